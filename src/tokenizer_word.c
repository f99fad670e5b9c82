/* tokenizer_word: being written */
#include "util.h"
