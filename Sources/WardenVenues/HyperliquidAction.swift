import Foundation

/// A Hyperliquid exchange action Warden passes, read into types and written back in Hyperliquid's own member
/// order: the venue hashes the MessagePack of the action as its typed reader sees it, so what Warden signs and
/// sends is always this canonical form, never the agent's bytes.
enum HyperliquidAction: Equatable {
    case order([HyperliquidOrder], grouping: String)
    case modify(HyperliquidOrderRef, HyperliquidOrder)
    case batchModify([(HyperliquidOrderRef, HyperliquidOrder)])
    case cancel([(asset: UInt64, oid: UInt64)])
    case cancelByCloid([(asset: UInt64, cloid: String)])
    case scheduleCancel(time: UInt64?)
    case updateLeverage(asset: UInt64, isCross: Bool, leverage: UInt64)

    static func == (a: Self, b: Self) -> Bool { a.wire == b.wire }

    /// The action types that move money or grant authority (sends, withdrawals, transfers between balances,
    /// vaults and sub-accounts, agents, builder fees, staking, multi-sig wrappers of any of them).
    static let fundTypes: Set<String> = [
        "usdSend", "spotSend", "withdraw3", "usdClassTransfer", "vaultTransfer", "approveAgent", "approveBuilderFee",
        "subAccountTransfer", "subAccountSpotTransfer", "createSubAccount", "cDeposit", "cWithdraw", "tokenDelegate", "sendAsset",
        "convertToMultiSigUser", "multiSig", "createVault", "vaultModify", "vaultDistribute",
        "spotDeploy", "perpDeploy", "evmUserModify", "userDexAbstraction", "agentEnableDexAbstraction",
    ]
    static let fundWords = ["send", "withdraw", "transfer", "deposit", "approve", "vault", "subaccount", "delegate", "multisig"]

    static func movesFunds(_ type: String) -> Bool {
        let lower = type.lowercased()
        return fundTypes.contains(type) || fundWords.contains { lower.contains($0) }
    }

    /// Reads an action Warden passes; nil for a type it does not know (the caller decides what that means).
    static func read(_ json: [String: Any]) throws(VenueError) -> Self? {
        let fields = try Fields(json, "action")
        switch json["type"] as? String {
        case "order":
            try fields.only(["type", "orders", "grouping", "builder"])
            if json["builder"] != nil { throw VenueError("a builder fee (action.builder) pays someone else from the account") }
            guard let grouping = json["grouping"] as? String, grouping == "na" else {
                throw VenueError("action.grouping must be na: take-profit and stop-loss groupings are not valued")
            }
            let orders = try fields.list("orders").enumerated().map { index, item throws(VenueError) in
                try HyperliquidOrder.read(item, "action.orders[\(index)]")
            }
            guard (1...50).contains(orders.count) else { throw VenueError("action.orders must hold 1 to 50 orders") }
            return .order(orders, grouping: grouping)
        case "modify":
            try fields.only(["type", "oid", "order"])
            return .modify(
                try HyperliquidOrderRef.read(json["oid"], "action.oid"), try HyperliquidOrder.read(json["order"], "action.order"))
        case "batchModify":
            try fields.only(["type", "modifies"])
            let modifies = try fields.list("modifies").enumerated().map { index, item throws(VenueError) in
                let path = "action.modifies[\(index)]"
                guard let modify = item as? [String: Any] else { throw VenueError("\(path) must be an object") }
                try Fields(modify, path).only(["oid", "order"])
                return (
                    try HyperliquidOrderRef.read(modify["oid"], path + ".oid"), try HyperliquidOrder.read(modify["order"], path + ".order")
                )
            }
            guard (1...50).contains(modifies.count) else { throw VenueError("action.modifies must hold 1 to 50 changes") }
            return .batchModify(modifies)
        case "cancel":
            try fields.only(["type", "cancels"])
            return .cancel(
                try fields.list("cancels").map { item throws(VenueError) in
                    let cancel = try Fields(item, "action.cancels[]")
                    try cancel.only(["a", "o"])
                    return (try cancel.uint("a"), try cancel.uint("o"))
                })
        case "cancelByCloid":
            try fields.only(["type", "cancels"])
            return .cancelByCloid(
                try fields.list("cancels").map { item throws(VenueError) in
                    let cancel = try Fields(item, "action.cancels[]")
                    try cancel.only(["asset", "cloid"])
                    return (try cancel.uint("asset"), try HyperliquidOrder.cloid(cancel.json["cloid"], "action.cancels[].cloid"))
                })
        case "scheduleCancel":
            try fields.only(["type", "time"])
            return .scheduleCancel(time: json["time"] == nil ? nil : try fields.uint("time"))
        case "updateLeverage":
            try fields.only(["type", "asset", "isCross", "leverage"])
            return .updateLeverage(
                asset: try fields.uint("asset"), isCross: try fields.bool("isCross"), leverage: try fields.uint("leverage"))
        default:
            return nil
        }
    }

    /// The action in Hyperliquid's member order.
    var wire: OrderedWire {
        switch self {
        case .order(let orders, let grouping):
            .map([("type", .string("order")), ("orders", .array(orders.map(\.wire))), ("grouping", .string(grouping))])
        case .modify(let ref, let order):
            .map([("type", .string("modify")), ("oid", ref.wire), ("order", order.wire)])
        case .batchModify(let modifies):
            .map([
                ("type", .string("batchModify")),
                ("modifies", .array(modifies.map { .map([("oid", $0.0.wire), ("order", $0.1.wire)]) })),
            ])
        case .cancel(let cancels):
            .map([("type", .string("cancel")), ("cancels", .array(cancels.map { .map([("a", .uint($0.asset)), ("o", .uint($0.oid))]) }))])
        case .cancelByCloid(let cancels):
            .map([
                ("type", .string("cancelByCloid")),
                ("cancels", .array(cancels.map { .map([("asset", .uint($0.asset)), ("cloid", .string($0.cloid))]) })),
            ])
        case .scheduleCancel(let time):
            .map([("type", .string("scheduleCancel"))] + (time.map { [("time", OrderedWire.uint($0))] } ?? []))
        case .updateLeverage(let asset, let isCross, let leverage):
            .map([("type", .string("updateLeverage")), ("asset", .uint(asset)), ("isCross", .bool(isCross)), ("leverage", .uint(leverage))])
        }
    }

    /// The orders the action places: a modify places its new order.
    var orders: [HyperliquidOrder] {
        switch self {
        case .order(let orders, _): orders
        case .modify(_, let order): [order]
        case .batchModify(let modifies): modifies.map(\.1)
        default: []
        }
    }
}

/// One order in Hyperliquid's wire form: `a` the asset, `b` buy, `p` the limit price, `s` the size, `r` reduce
/// only, `t` the type (a limit with its time in force), `c` the client order id.
struct HyperliquidOrder: Equatable {
    var asset: UInt64
    var isBuy: Bool
    var price: String
    var size: String
    var reduceOnly: Bool
    var tif: String
    var cloid: String?

    static func read(_ value: Any?, _ path: String) throws(VenueError) -> Self {
        let fields = try Fields(value, path)
        try fields.only(["a", "b", "p", "s", "r", "t", "c"])
        let asset = try fields.uint("a")
        guard asset < 10_000 else { throw VenueError("\(path).a: spot orders are not passed through Warden; perpetuals only") }
        for name in ["p", "s"] {
            guard let text = fields.json[name] as? String, let number = ExchangeRules.decimal(text), number > 0 else {
                throw VenueError("\(path).\(name) must be a string holding a plain decimal number above zero")
            }
        }
        guard let type = fields.json["t"] as? [String: Any], type.count == 1, let limit = type["limit"] as? [String: Any] else {
            throw VenueError("\(path).t must be a limit order, {\"limit\": {\"tif\": …}}: trigger orders are not valued")
        }
        guard limit.count == 1, let tif = limit["tif"] as? String, ["Gtc", "Ioc", "Alo"].contains(tif) else {
            throw VenueError("\(path).t.limit.tif must be Gtc, Ioc or Alo")
        }
        // Hyperliquid hashes numbers without trailing zeros ("50000", not "50000.0"): Warden writes them so.
        let plain = { (name: String) in "\(ExchangeRules.decimal(fields.json[name] as? String ?? "") ?? 0)" }
        return Self(
            asset: asset, isBuy: try fields.bool("b"), price: plain("p"), size: plain("s"),
            reduceOnly: try fields.bool("r"), tif: tif,
            cloid: fields.json["c"] == nil ? nil : try cloid(fields.json["c"], path + ".c"))
    }

    /// A client order id: 16 bytes as `0x` and 32 lower-case hex digits.
    static func cloid(_ value: Any?, _ path: String) throws(VenueError) -> String {
        guard let text = value as? String, text.utf8.count == 34, text.hasPrefix("0x"),
            text.utf8.dropFirst(2).allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        else { throw VenueError("\(path) must be 0x and 32 lower-case hex digits") }
        return text
    }

    var wire: OrderedWire {
        var members: [(String, OrderedWire)] = [
            ("a", .uint(asset)), ("b", .bool(isBuy)), ("p", .string(price)), ("s", .string(size)), ("r", .bool(reduceOnly)),
            ("t", .map([("limit", .map([("tif", .string(tif))]))])),
        ]
        if let cloid { members.append(("c", .string(cloid))) }
        return .map(members)
    }
}

/// The order a modify replaces: by its id, or by its client order id.
enum HyperliquidOrderRef: Equatable {
    case oid(UInt64)
    case cloid(String)

    static func read(_ value: Any?, _ path: String) throws(VenueError) -> Self {
        if value is String { return .cloid(try HyperliquidOrder.cloid(value, path)) }
        return .oid(try Fields.uint(value, path))
    }

    var wire: OrderedWire {
        switch self {
        case .oid(let id): .uint(id)
        case .cloid(let id): .string(id)
        }
    }
}

/// A JSON object's members read with their types checked (Foundation reads `true` and `1` alike).
struct Fields {
    let json: [String: Any]
    let path: String

    init(_ value: Any?, _ path: String) throws(VenueError) {
        guard let json = value as? [String: Any] else { throw VenueError("\(path) must be a JSON object") }
        self.json = json
        self.path = path
    }

    func only(_ names: Set<String>) throws(VenueError) {
        if let unknown = json.keys.sorted().first(where: { !names.contains($0) }) {
            throw VenueError("\(path).\(unknown) is not passed through Warden")
        }
    }

    func list(_ name: String) throws(VenueError) -> [Any] {
        guard let items = json[name] as? [Any] else { throw VenueError("\(path).\(name) must be a list") }
        return items
    }

    func uint(_ name: String) throws(VenueError) -> UInt64 { try Self.uint(json[name], "\(path).\(name)") }

    func bool(_ name: String) throws(VenueError) -> Bool {
        guard let number = json[name] as? NSNumber, Self.isBool(number) else { throw VenueError("\(path).\(name) must be true or false") }
        return number.boolValue
    }

    static func isBool(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    static func uint(_ value: Any?, _ path: String) throws(VenueError) -> UInt64 {
        guard let number = value as? NSNumber, !isBool(number), let whole = UInt64(number.stringValue) else {
            throw VenueError("\(path) must be a whole number, zero or more")
        }
        return whole
    }
}
