// net/net.cpp: compiles the umbrella header inside the library, so that <weft/weft.hpp> is always
// self-contained.
#include <weft/weft.hpp>
