/* attention: being written */
#include "util.h"
