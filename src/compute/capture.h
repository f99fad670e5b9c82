/* Private: the capture plumbing of the forward pass, asking a sink whether it
 * wants a value and handing it over (the value names are public:
 * attn_capture_name in attn/attn.h). */
#ifndef ATTN_CAPTURE_H
#define ATTN_CAPTURE_H

#include "base/util.h"

/* Is key wanted by cap (which may be NULL)? */
bool attn_cap_wants(const attn_capture *cap, const attn_capture_key *key);
/* Hands data [rows, cols] to the sink; a failing sink that left no message
 * gets one naming the value. err may be NULL. */
attn_status attn_cap_emit(const attn_capture *cap, const attn_capture_key *key, const float *data,
                          int rows, int cols, int row_offset, attn_error *err);
/* attn_cap_emit when the sink wants key, else nothing (ATTN_OK), for values
 * that exist anyway. data is [rows, cols]. */
attn_status attn_cap_offer(const attn_capture *cap, const attn_capture_key *key, const float *data,
                           int rows, int cols, int row_offset, attn_error *err);

/* For the values an intervention may change (attn_capture.edit): when the
 * sink wants key, its edit (if any) changes data [rows, cols] in place, then
 * it is emitted. */
attn_status attn_cap_edit(const attn_capture *cap, const attn_capture_key *key, float *data,
                          int rows, int cols, int row_offset, attn_error *err);

#endif
