/* model: being written */
#include "util.h"
