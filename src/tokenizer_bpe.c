/* tokenizer_bpe: being written */
#include "util.h"
