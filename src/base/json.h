/* Private: how messages name a JSON value's type (config.c, safetensors.c). */
#ifndef ATTN_JSON_H
#define ATTN_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* "an object", "an array", "a string", "a number", "null", or for a boolean
 * "a boolean", or with spell_bool its value, "true" or "false" (the config's
 * messages say "got true", the safetensors header's "is a boolean"). */
static inline const char *attn_json_type(const cJSON *v, bool spell_bool) {
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return !spell_bool ? "a boolean" : cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

#endif
