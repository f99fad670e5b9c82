/* safetensors: being written */
#include "util.h"
