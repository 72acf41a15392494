#ifndef DISTILL_TESTS_SUPPORT_PORTS_H_
#define DISTILL_TESTS_SUPPORT_PORTS_H_

namespace distill::testing {

// A TCP port on 127.0.0.1 that was free a moment ago: bound, then released, so nothing listens on it
// (for an address that must refuse connections, or for a server that takes its port as a flag). Another
// process may take it in between. 0 when no port could be bound.
int FreeLoopbackPort();

}  // namespace distill::testing

#endif  // DISTILL_TESTS_SUPPORT_PORTS_H_
