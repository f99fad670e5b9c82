/* tokenizer: being written */
#include "util.h"
