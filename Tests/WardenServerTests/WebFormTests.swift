import Testing
@testable import WardenServer

/// A dashboard form body is any bytes a browser or an attacker sends: it never fails to read.
@Suite struct WebFormTests {
    @Test func fieldsAreDecodedAndMalformedEncodingIsKeptAsWritten() {
        let form = WebForm("email=a%40example.com&password=p+w%2Bd&empty=&flag&csrf=%zz&text=a b c&odd=%&json={\"a\": 1}")
        #expect(form["email"] == "a@example.com")
        #expect(form["password"] == "p w+d")
        #expect(form["empty"] == "" && form["flag"] == "")
        #expect(form["csrf"] == "%zz" && form["text"] == "a b c" && form["odd"] == "%")
        #expect(form["json"] == "{\"a\": 1}")
    }

    @Test func generatedBodiesNeverFail() {
        var rng = SystemRandomNumberGenerator()
        let pieces = ["%", "%z", "%4", "%41", "+", "=", "&", " ", "\"", "{", "é", "\u{0}", "a", "csrf"]
        for _ in 0..<5000 {
            let body = (0..<Int.random(in: 0...12, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            _ = WebForm(body)["csrf"]
        }
    }
}
