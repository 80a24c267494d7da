/* criterion/theories.h for the tshim builds (see criterion.h beside it):
 * Theory, TheoryDataPoints, DataPoints and cr_assume* are in tshim.h. */
#include "../../backup/tshim.h"
