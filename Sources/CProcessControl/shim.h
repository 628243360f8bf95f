// prctl is variadic, which Swift cannot call: these wrappers fix its arguments.
#include <sys/prctl.h>

static inline int warden_set_undumpable(void) { return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }
static inline int warden_is_dumpable(void) { return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0); }
