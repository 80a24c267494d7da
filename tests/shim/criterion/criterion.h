/* criterion/criterion.h for the builds that run the suites with tshim (the
 * TSan build and tests/valgrind.sh): tests/shim comes first on the include
 * path there, so every suite's #include <criterion/criterion.h> lands here. */
#include "../../backup/tshim.h"
