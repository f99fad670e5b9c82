/* capture: being written */
#include "util.h"
