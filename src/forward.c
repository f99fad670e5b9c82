/* forward: being written */
#include "util.h"
