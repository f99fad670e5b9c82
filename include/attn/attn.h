/*
 * attn: transformer-block inference that shows what attention did.
 *
 * Public API. Everything the CLI does goes through these functions, so the
 * library can be tested, fuzzed and embedded without the CLI.
 *
 * Conventions
 *   - Every public name starts with attn_ / ATTN_.
 *   - Errors. Every function that can fail returns an attn_status: ATTN_OK
 *     (0) on success, else the non-zero status of the failure. Its last
 *     argument is a caller-owned `attn_error *err` (the attn_labels_*
 *     constructors of attn/write.h, which can only run out of memory, take
 *     none). On failure the library fills *err, when err is not NULL, with
 *     the same status and a one-line message naming the file, tensor, key or
 *     value at fault. err may always be NULL: then only the status comes
 *     back. On failure the outputs are left as each function documents (a
 *     pointer output NULL, a count 0), so a failed call leaves the caller
 *     nothing to free. Capture sinks follow the same rule: emit returns an
 *     attn_status and fills the err it is given (the forward pass always
 *     gives one, and names the value when a sink fails without a message).
 *     The library never prints, exits or aborts.
 *   - attn_X_open/new pairs with attn_X_close/free; the free functions accept NULL.
 *   - Parsers take memory buffers (the *_open functions read a file and call
 *     them), so every parser can be fuzzed in memory.
 *
 * Shape legend used in comments throughout the code:
 *   T  = positions of the sequence being run (queries)
 *   S  = positions of the encoder input of an encoder-decoder (cross-attention keys)
 *   Tk = key positions (T for self-attention, S for cross-attention)
 *   D  = d_model          H  = n_heads         KV = n_kv_heads
 *   hd = head_dim         F  = d_ff            V  = vocab_size
 *   Tensors are row-major; [A, B] means A rows of B contiguous floats.
 */
#ifndef ATTN_ATTN_H
#define ATTN_ATTN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ATTN_BUILDING) && defined(__GNUC__)
#define ATTN_API __attribute__((visibility("default")))
#else
#define ATTN_API
#endif

#define ATTN_VERSION_STRING "0.1.0"
ATTN_API const char *attn_version(void);

/* Threads of the matrix products and of the maps CSV writer (OpenMP, when
 * the library was built with it): n from 1 to ATTN_THREADS_MAX, or 0 (the default) for the number of
 * online cores; larger values are taken as ATTN_THREADS_MAX. Results are
 * the same, byte for byte, for every thread count: each output element is
 * computed whole by one thread, in one fixed order. Set it before running,
 * not while a forward pass runs. attn_threads is the count in use. */
#define ATTN_THREADS_MAX 256
ATTN_API void attn_set_threads(int n);
ATTN_API int attn_threads(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

typedef enum attn_status {
    ATTN_OK = 0,
    ATTN_ERR_USAGE,  /* the caller asked for something invalid (an id outside the
                        vocabulary, a sequence longer than max_seq_len, ...) */
    ATTN_ERR_IO,     /* a file could not be opened, read or written */
    ATTN_ERR_FORMAT, /* a file's content is malformed or inconsistent */
    ATTN_ERR_NOMEM,  /* allocation failed or a size overflowed */
    ATTN_ERR_INTERNAL
} attn_status;

#define ATTN_ERROR_MAX 1024
typedef struct attn_error {
    attn_status status;
    char message[ATTN_ERROR_MAX]; /* one line, no trailing newline; names the
                                     file / tensor / key / value at fault */
} attn_error;

#if defined(__GNUC__)
#define ATTN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ATTN_PRINTF(f, a)
#endif

/* Fills err (may be NULL) with status and a printf-style message made one
 * line; returns status. For capture sinks and writers outside the library. */
ATTN_API attn_status attn_error_set(attn_error *err, attn_status status, const char *fmt, ...)
    ATTN_PRINTF(3, 4);
ATTN_API attn_status attn_error_setv(attn_error *err, attn_status status, const char *fmt, va_list ap);
/* Prepends "prefix: " to the message already in err (may be NULL). */
ATTN_API void attn_error_prefix(attn_error *err, const char *fmt, ...) ATTN_PRINTF(2, 3);

/* ------------------------------------------------------------------------ */
/* Input limits (docs/model-format.md, "Limits"): the ones a program that   */
/* reads its own inputs needs; the rest are checked inside the library.     */

#define ATTN_CONFIG_FILE_MAX ((size_t)1 << 20)     /* bytes of a config (1 MiB) */
#define ATTN_EMBEDDINGS_FILE_MAX ((size_t)1 << 31) /* bytes of a CSV / .npy of vectors (2 GiB) */
#define ATTN_TEXT_MAX ((size_t)1 << 20)            /* bytes of one input text (1 MiB) */

/* Reads f to its end into a malloc'd buffer, NUL-terminated (*len excludes
 * the NUL; *buf is NULL on error). More than max bytes is ATTN_ERR_FORMAT,
 * "NAME: more than the 1 MiB limit of WHAT (1048576 bytes)", found after
 * reading at most max + 1 bytes; what is e.g. "a config". */
ATTN_API attn_status attn_read_stream(FILE *f, size_t max, const char *name, const char *what,
                                      char **buf, size_t *len, attn_error *err);

/* ------------------------------------------------------------------------ */
/* Config (docs/model-format.md, "Config keys")                            */

typedef enum { ATTN_ARCH_DECODER, ATTN_ARCH_ENCODER, ATTN_ARCH_ENCODER_DECODER } attn_arch;
typedef enum { ATTN_POS_LEARNED, ATTN_POS_SINUSOIDAL, ATTN_POS_ROPE, ATTN_POS_NONE } attn_positional;
typedef enum { ATTN_NORM_LAYERNORM, ATTN_NORM_RMSNORM } attn_norm_kind;
typedef enum { ATTN_NORM_PRE, ATTN_NORM_POST } attn_norm_position;
typedef enum {
    ATTN_MLP_RELU,
    ATTN_MLP_GELU,      /* exact, erf */
    ATTN_MLP_GELU_TANH,
    ATTN_MLP_SWIGLU,    /* down(silu(gate(x)) * up(x)) */
    ATTN_MLP_NONE       /* attention-only blocks: no MLP sub-layer, no MLP tensors */
} attn_mlp_kind;
typedef enum { ATTN_LM_HEAD_NONE, ATTN_LM_HEAD_TIED, ATTN_LM_HEAD_SEPARATE } attn_lm_head;
typedef enum {
    ATTN_TOKENIZER_WORD,
    ATTN_TOKENIZER_LLAMA2C,
    ATTN_TOKENIZER_GPT2, /* GPT-2's byte-level BPE: vocab.json + merges.txt (needs PCRE2) */
    ATTN_TOKENIZER_HF    /* a Hugging Face tokenizer.json: GPT-2's byte-level BPE (needs
                            PCRE2) or Llama's SentencePiece-style BPE */
} attn_tokenizer_type;

#define ATTN_PATH_MAX 4096
#define ATTN_TOKEN_MAX 256
#define ATTN_SPECIAL_MAX 64 /* tokens listed in a word tokenizer's "special" */

typedef struct attn_tokenizer_config {
    attn_tokenizer_type type;
    char path[ATTN_PATH_MAX]; /* word, gpt2: "vocab"; llama2c, hf: "path". Resolved against
                                 the config's folder when the config has one. */
    char merges[ATTN_PATH_MAX]; /* gpt2 only: "merges" (merges.txt / vocab.bpe), resolved
                                   like path */
    /* word tokenizer only */
    bool lowercase;
    char unk[ATTN_TOKEN_MAX];
    bool has_bos, has_eos;    /* false when the key is null or absent */
    char bos[ATTN_TOKEN_MAX];
    char eos[ATTN_TOKEN_MAX];
    /* Special tokens: every vocabulary entry written <...> (no '<', '>' or
     * white space inside) and every token of special[] is matched whole in
     * the text, wherever it occurs, exactly as written (not lowercased, not
     * split at punctuation). Each of special[] must be in the vocabulary.
     * All zero (the default): <...> entries match, no extra tokens. */
    bool special_off;         /* "special_tokens": false: no token is special */
    int n_special;            /* "special": [...], at most ATTN_SPECIAL_MAX */
    char special[ATTN_SPECIAL_MAX][ATTN_TOKEN_MAX];
    bool eos_not_added;       /* "add_eos": false: eos ends generation, but encoding
                                 does not append it to the text */
} attn_tokenizer_config;

typedef struct attn_config {
    attn_arch arch;
    int vocab_size, d_model, n_heads, n_kv_heads, head_dim, d_ff, max_seq_len;
    int n_layers;         /* main stack: the decoder, or the encoder of an encoder-only model */
    int n_encoder_layers; /* encoder-decoder only, else 0 */
    attn_positional positional;
    double rope_theta;    /* default 10000 */
    double embed_scale;   /* default 1 */
    attn_norm_kind norm;
    double norm_eps;      /* default 1e-5 */
    attn_norm_position norm_position;
    bool final_norm;      /* default: true for pre, false for post */
    bool embed_norm;      /* default false: a norm on each stack's embeddings before its
                             first block (BERT's embedding LayerNorm); tensors
                             [encoder.]embed_norm.weight / .bias */
    attn_mlp_kind mlp;
    bool bias;
    attn_lm_head lm_head;
    char weights[ATTN_PATH_MAX]; /* resolved like tokenizer paths */
    bool has_tokenizer;
    attn_tokenizer_config tokenizer;
} attn_config;

/* Parses and validates a config from memory. `name` names the buffer in
 * messages (usually the file's path). `base_dir`: the folder relative paths
 * are resolved against, and whose files must exist; NULL keeps paths as
 * written and checks no file (fuzzing, unit tests). */
ATTN_API attn_status attn_config_parse(attn_config *cfg, const char *json, size_t len, const char *name,
                               const char *base_dir, attn_error *err);
/* Reads `path` and parses it with base_dir = the file's folder. */
ATTN_API attn_status attn_config_load(attn_config *cfg, const char *path, attn_error *err);

/* Does the main stack of this architecture attend causally (a decoder's
 * self-attention: query i sees keys 0..i)? The one place the rule lives. */
ATTN_API bool attn_arch_causal(attn_arch a);
ATTN_API const char *attn_arch_name(attn_arch a);          /* "decoder", ... */
ATTN_API const char *attn_positional_name(attn_positional p);
ATTN_API const char *attn_norm_name(attn_norm_kind n);
ATTN_API const char *attn_mlp_name(attn_mlp_kind m);
ATTN_API const char *attn_lm_head_name(attn_lm_head h);

/* ------------------------------------------------------------------------ */
/* Safetensors                                                                */

typedef enum { ATTN_DTYPE_F32, ATTN_DTYPE_F16, ATTN_DTYPE_BF16 } attn_dtype;
#define ATTN_MAX_DIMS 8

typedef struct attn_tensor {
    const char *name;   /* owned by the attn_safetensors */
    attn_dtype dtype;   /* as stored in the file */
    int ndim;
    int64_t shape[ATTN_MAX_DIMS];
    size_t numel;       /* product of shape (1 for a 0-d tensor) */
    const float *data;  /* [numel] float32: a view into the file's image for aligned
                           F32, else a copy converted once at open time */
} attn_tensor;

typedef struct attn_safetensors attn_safetensors;

/* Maps `path` read-only (mmap PROT_READ, MAP_PRIVATE: aligned F32 tensors
 * are used in place, their pages shared with the page cache) and validates
 * it completely (see attn_safetensors_parse). A pipe, /dev/stdin or a file
 * the kernel cannot map is read into memory instead (a file whose size
 * changes during that read is ATTN_ERR_IO). The values are not checked:
 * NaNs are kept.
 *
 * While it is open, the file must not be truncated or rewritten in place:
 * reading a page that a truncation took away raises SIGBUS (a program
 * catches it to report it; the attn command prints that the weights file
 * changed and exits 1). Replacing the file by renaming a new one over it,
 * as attn_safetensors_write does, is safe. */
ATTN_API attn_status attn_safetensors_open(attn_safetensors **out, const char *path, attn_error *err);
/* Validates a safetensors image in memory. The buffer is not copied and must
 * outlive the returned object. Refuses: a header length outside the file or
 * over 100 MB, malformed header JSON, duplicate names, unknown dtypes, a byte
 * size that is not numel * dtype size (overflow-checked), offsets outside the
 * data area, overlaps, holes, trailing bytes. Every message names `name` and
 * the tensor. */
ATTN_API attn_status attn_safetensors_parse(attn_safetensors **out, const void *buf, size_t len,
                                    const char *name, attn_error *err);
ATTN_API void attn_safetensors_close(attn_safetensors *st);
ATTN_API const char *attn_safetensors_name(const attn_safetensors *st);
ATTN_API size_t attn_safetensors_count(const attn_safetensors *st);
ATTN_API const attn_tensor *attn_safetensors_at(const attn_safetensors *st, size_t i); /* file order */
ATTN_API const attn_tensor *attn_safetensors_find(const attn_safetensors *st, const char *name);
/* The dtype as safetensors names it ("F32", "F16", "BF16"); "?" for a value
 * outside attn_dtype. */
ATTN_API const char *attn_dtype_name(attn_dtype d);
/* Bytes of one element as stored in the file: 4 for F32, 2 for F16 and BF16
 * (0 for a value outside attn_dtype). */
ATTN_API size_t attn_dtype_size(attn_dtype d);

/* Writing (import tools, tests): F32 only; tensors are laid out in the order
 * given; the file appears atomically (written to a temporary name, renamed). */
typedef struct attn_tensor_spec {
    const char *name;
    int ndim;
    int64_t shape[ATTN_MAX_DIMS];
    const float *data; /* [product of shape] */
} attn_tensor_spec;
ATTN_API attn_status attn_safetensors_write(const char *path, const attn_tensor_spec *tensors, size_t n,
                                    attn_error *err);

/* ------------------------------------------------------------------------ */
/* Tokenizers                                                                 */

typedef struct attn_tokenizer attn_tokenizer;

/* Reads the file named by tc->path (and tc->merges for gpt2) and builds the
 * tokenizer. */
ATTN_API attn_status attn_tokenizer_open(attn_tokenizer **out, const attn_tokenizer_config *tc,
                                 attn_error *err);
/* Same from a memory image of that file; `name` names it in messages. A gpt2
 * tokenizer has two files: use attn_tokenizer_gpt2_from_memory. */
ATTN_API attn_status attn_tokenizer_from_memory(attn_tokenizer **out, const attn_tokenizer_config *tc,
                                        const void *buf, size_t len, const char *name,
                                        attn_error *err);
/* A gpt2 tokenizer from memory images of its vocab.json (a JSON object, token
 * -> id) and merges.txt (one merge "A B" a line, by rank; a first line
 * "#version..." is skipped); the names name them in messages. Without PCRE2
 * built in: ATTN_ERR_FORMAT, "not built in" (exit 1 in the CLI). */
ATTN_API attn_status attn_tokenizer_gpt2_from_memory(attn_tokenizer **out, const void *vocab,
                                                     size_t vocab_len, const char *vocab_name,
                                                     const void *merges, size_t merges_len,
                                                     const char *merges_name, attn_error *err);
ATTN_API void attn_tokenizer_free(attn_tokenizer *tok);
ATTN_API int attn_tokenizer_size(const attn_tokenizer *tok);   /* number of ids */
/* Encodes len bytes of text (need not be NUL-terminated). *ids is malloc'd
 * ([*n] ids, BOS/EOS included as configured); the caller frees it with free().
 * Special tokens in the text (attn_tokenizer_config) are matched whole. */
ATTN_API attn_status attn_tokenizer_encode(const attn_tokenizer *tok, const char *text, size_t len,
                                   int **ids, size_t *n, attn_error *err);
/* Flags of attn_tokenizer_encode_flags (or-ed). */
enum {
    ATTN_ENCODE_NO_SPECIAL = 1u << 0, /* no special token matching: "<mask>" is '<' "mask" '>' */
    ATTN_ENCODE_SPECIAL = 1u << 1,    /* match the special tokens of a tokenizer that matches
                                         none by default (gpt2: "<|endoftext|>"); the word
                                         tokenizer matches them anyway. Excludes NO_SPECIAL. */
};
/* attn_tokenizer_encode with flags; an unknown flag bit is a usage error.
 * The llama2c tokenizer matches no special tokens and ignores the flag. */
ATTN_API attn_status attn_tokenizer_encode_flags(const attn_tokenizer *tok, const char *text,
                                                 size_t len, unsigned flags, int **ids, size_t *n,
                                                 attn_error *err);
/* The token's text as stored (the label shown in maps); NULL for an id out of range. */
ATTN_API const char *attn_tokenizer_piece(const attn_tokenizer *tok, int id);
/* Text to print when `id` follows `prev` (-1 at the start) in generated
 * output: llama2c drops the leading space after BOS and turns <0xXX> into
 * the byte; the word tokenizer separates words with one space. Returns the
 * length written into buf (NUL-terminated, truncated to cap-1). */
ATTN_API size_t attn_tokenizer_decode(const attn_tokenizer *tok, int prev, int id, char *buf,
                                      size_t cap);
ATTN_API int attn_tokenizer_bos(const attn_tokenizer *tok); /* -1 when none */
ATTN_API int attn_tokenizer_eos(const attn_tokenizer *tok); /* -1 when none */

/* ------------------------------------------------------------------------ */
/* Model: config + weights (views into the file's image) + tokenizer        */

typedef struct attn_model attn_model;

/* Loads config, weights and tokenizer; checks that every tensor the config
 * needs is present with the right shape and only finite values (a NaN or an
 * infinity is ATTN_ERR_FORMAT naming the tensor and the element) and that no
 * tensor is unexplained. */
ATTN_API attn_status attn_model_open(attn_model **out, const char *config_path, attn_error *err);
/* attn_model_open of a config already parsed (attn_config_parse, e.g. of a
 * config read from a stream): opens the weights and the tokenizer cfg names,
 * refusing first a weights file too small for the sizes cfg implies. `name`
 * names the config in messages. */
ATTN_API attn_status attn_model_open_config(attn_model **out, const attn_config *cfg,
                                            const char *name, attn_error *err);
/* Builds a model from parts (with the checks of attn_model_open); takes
 * ownership of st and tok (tok may be NULL) also on failure. */
ATTN_API attn_status attn_model_from_parts(attn_model **out, const attn_config *cfg, attn_safetensors *st,
                                   attn_tokenizer *tok, attn_error *err);
ATTN_API void attn_model_close(attn_model *m);
ATTN_API const attn_config *attn_model_config(const attn_model *m);
ATTN_API const attn_tokenizer *attn_model_tokenizer(const attn_model *m); /* NULL if none */
/* A tensor of the model's weights file by name (as float32, see attn_tensor);
 * NULL when the file has none of that name. Valid until attn_model_close. */
ATTN_API const attn_tensor *attn_model_tensor(const attn_model *m, const char *name);
/* The model's weights file: every tensor in file order with its dtype as
 * stored (attn_safetensors_count / attn_safetensors_at); NULL for m NULL.
 * Valid until attn_model_close. */
ATTN_API const attn_safetensors *attn_model_weights(const attn_model *m);
/* The logit lens (compute/lens.c): rows x [T, D] of the main stack's
 * residual stream (the value blocks.L.resid, or embed) through the stack's
 * final norm, when the model has one, and the unembedding, into
 * logits [T, V]; scratch holds [T, D] floats. For the last layer's stream
 * these are the model's own logits, byte for byte. ATTN_ERR_USAGE when the
 * model has no lm_head. */
ATTN_API attn_status attn_model_unembed(const attn_model *m, const float *x, int T, float *scratch,
                                        float *logits, attn_error *err);


/* ------------------------------------------------------------------------ */
/* Capture: the forward pass hands every requested value to a sink.          */

typedef enum attn_value {
    ATTN_V_EMBED,        /* [T, D]  input to the first block: token embedding * embed_scale
                                    (+ learned/sinusoidal positions); layer = -1 */
    ATTN_V_ATTN_IN,      /* [T, D]  what the attention sub-layer reads (normed when pre-norm) */
    ATTN_V_Q,            /* [T, hd] one query head, after RoPE; head = query head */
    ATTN_V_K,            /* [Tk,hd] one key head, after RoPE; head = kv head */
    ATTN_V_V,            /* [Tk,hd] one value head; head = kv head */
    ATTN_V_SCORES,       /* [T, Tk] q.k / sqrt(hd) before mask and softmax; head = query head */
    ATTN_V_WEIGHTS,      /* [T, Tk] softmax weights (masked entries exactly 0) */
    ATTN_V_HEAD_CONTEXT, /* [T, hd] weights . v for one head */
    ATTN_V_CONCAT,       /* [T, H*hd] heads concatenated in head order */
    ATTN_V_ATTN_OUT,     /* [T, D]  after the output projection */
    ATTN_V_MLP_OUT,      /* [T, D]  MLP sub-layer output (before the residual add) */
    ATTN_V_RESID,        /* [T, D]  residual stream after the block */
    ATTN_V_HIDDEN,       /* [T, D]  final hidden state of the stack (after the final norm
                                    where there is one); layer = -1 */
    ATTN_V_LOGITS,       /* [T, V]  main stack with an lm_head only; layer = -1 */
    ATTN_V_COUNT
} attn_value;

typedef enum { ATTN_STACK_DECODER, ATTN_STACK_ENCODER } attn_stack; /* CSV "stack" column */
typedef enum { ATTN_KIND_SELF, ATTN_KIND_CROSS } attn_attn_kind;    /* CSV "kind" column */

typedef struct attn_capture_key {
    attn_value value;
    attn_stack stack;
    bool source;         /* the encoder of an encoder-decoder (tensor prefix "encoder.blocks") */
    int layer;           /* 0-based block index; -1 for stack-level values */
    attn_attn_kind kind; /* attention values (ATTN_IN .. ATTN_OUT) only */
    int head;            /* per-head values; -1 otherwise */
    bool causal;         /* the value belongs to self-attention under a causal mask (a
                            decoder stack's): query row i sees keys 0..i, and the weights
                            of later keys are exactly 0 */
} attn_capture_key;

typedef struct attn_capture_view {
    int rows, cols;     /* data is [rows, cols] */
    const float *data;  /* valid only during the emit call */
    int row_offset;     /* absolute position of row 0 (incremental decoding) */
} attn_capture_view;

typedef struct attn_capture {
    /* Is this value wanted? Asked before anything is materialized; NULL = nothing. */
    bool (*wants)(void *user, const attn_capture_key *key);
    /* Receives a wanted value. Return ATTN_OK to go on, or fill err and return
     * its status to stop the forward pass with that error. */
    attn_status (*emit)(void *user, const attn_capture_key *key,
                        const attn_capture_view *view, attn_error *err);
    void *user;
    /* Interventions (may be NULL): changes a wanted value in place, data
     * [rows, cols], before the forward pass goes on with it and before any
     * sink's emit sees it. Offered only for the values the rest of the pass
     * is computed from: ATTN_V_CONCAT (the heads before the o projection,
     * head h in columns h*head_dim ..), ATTN_V_MLP_OUT (before it joins the
     * stream) and ATTN_V_RESID (the stream after a block). */
    attn_status (*edit)(void *user, const attn_capture_key *key, float *data, int rows, int cols,
                        int row_offset, attn_error *err);
    /* Set by a sink whose emit may run on one of the forward pass's threads
     * while the others make the next value (emits still come one at a time
     * and in the usual order). Such an emit must not start threads of its
     * own nor touch the pass's session; a writer that formats and writes a
     * file qualifies. The pass then writes one head's maps while it makes
     * the next head's. */
    bool emit_alongside;
} attn_capture;

/* The value's name, e.g. "blocks.3.attn.weights", "encoder.blocks.0.attn.q",
 * "blocks.1.cross.k", "blocks.0.mlp.out", "embed", "hidden", "logits".
 * Per-head values name the head: "blocks.3.attn.weights.h2"; maps made from
 * several heads its sentinel: "blocks.3.attn.weights.mean". Returns the
 * length it needs (snprintf-like). */
ATTN_API size_t attn_capture_name(const attn_capture_key *key, char *buf, size_t cap);
ATTN_API const char *attn_value_name(attn_value v); /* "weights", "q", ... */
/* Maps made from several heads of one attention sub-layer (the aggregation
 * sinks of attn/write.h) carry one of these in the key's head: */
#define ATTN_HEAD_MEAN (-2)    /* the mean over the heads (--reduce mean) */
#define ATTN_HEAD_MAX (-3)     /* the largest weight of any head (--reduce max) */
#define ATTN_HEAD_ROLLOUT (-4) /* attention rollout through this layer (--rollout) */
/* The head as the CSV "head" column and the names show it: the number, or
 * "mean", "max", "rollout"; "" for -1 (no head). Static storage for the
 * sentinels; numbers go to buf[cap] (12 bytes suffice). */
ATTN_API const char *attn_head_name(int head, char *buf, size_t cap);
ATTN_API const char *attn_stack_name(attn_stack s);      /* "decoder", "encoder" */
ATTN_API const char *attn_kind_name(attn_attn_kind k);   /* "self", "cross" */

/* ------------------------------------------------------------------------ */
/* Running: a session holds the run state and the key/value cache, so a      */
/* sequence can be fed all at once or a few positions at a time (generate).   */

typedef struct attn_session attn_session;

typedef struct attn_input {
    const int *ids;          /* [n] token ids, or NULL when embeddings are given */
    const float *embeddings; /* [n, D] vectors fed to the first block directly (no
                                embedding lookup, no scale, no added positions;
                                RoPE still applies inside attention); giving both
                                ids and embeddings is a usage error */
    size_t n;
} attn_input;

ATTN_API attn_status attn_session_new(attn_session **out, const attn_model *m, attn_error *err);
ATTN_API void attn_session_free(attn_session *s);
/* Forgets all positions (and the encoder output). */
ATTN_API void attn_session_reset(attn_session *s);
/* Positions of the main stack processed since the last reset. */
ATTN_API size_t attn_session_length(const attn_session *s);
/* on: this session will not be continued. Each attn_session_forward after a
 * reset is one whole pass, whose main stack reuses one key/value cache
 * ([n_kv_heads, head_dim, T] keys and values) layer after layer instead of
 * keeping one per layer: n_layers times less memory for the cache, the same
 * bytes out. A forward on a session that already holds positions is then
 * refused (ATTN_ERR_USAGE), never computed without the earlier keys. Off by
 * default; changing it while the session holds positions is ATTN_ERR_USAGE
 * (reset it first). */
ATTN_API attn_status attn_session_set_reuse_cache(attn_session *s, bool on, attn_error *err);

/* Encoder-decoder only: runs the encoder on the source; its output is what
 * cross-attention reads in later attn_session_forward calls. It also empties
 * the decoder side (cached positions depended on the old source). */
ATTN_API attn_status attn_session_encode(attn_session *s, const attn_input *src, const attn_capture *cap,
                                 attn_error *err);
/* Runs the main stack on in->n new positions that follow the ones already in
 * the session (causal stacks), reusing the cached keys and values. An
 * encoder-only stack is bidirectional and needs an empty session. Fails with
 * ATTN_ERR_USAGE for an id outside the vocabulary or a sequence longer than
 * max_seq_len. cap may be NULL. */
ATTN_API attn_status attn_session_forward(attn_session *s, const attn_input *in, const attn_capture *cap,
                                  attn_error *err);
/* Runs the main stack again from block `layer` (0 .. n_layers; n_layers:
 * only the final norm and the logits) over the T positions 0 .. T-1 that
 * the session holds (attn_session_length == T, e.g. right after one
 * attn_session_forward of T positions), starting from x [T, d_model], the
 * residual stream at that block's input: the EMBED value for layer 0, else
 * the RESID value of block layer - 1, as captured from the earlier pass.
 * The encoder output (cross-attention keys and values) and the caches of the
 * blocks before `layer` are kept; those from `layer` on are recomputed.
 * Captures are offered for blocks layer .. n_layers-1, HIDDEN and LOGITS
 * (not EMBED nor earlier blocks), with the same bytes as a whole pass that
 * had the same values at block `layer`'s input: a sweep of interventions
 * in one layer costs only the rest of the stack. ATTN_ERR_USAGE for a bad
 * layer, a NULL x or another length. */
ATTN_API attn_status attn_session_rerun_from(attn_session *s, int layer, const float *x, int T,
                                            const attn_capture *cap, attn_error *err);
/* The same for the encoder of an encoder-decoder: runs the encoder again
 * from block `layer` (0 .. n_encoder_layers) over the S source positions of
 * the last attn_session_encode, from x [S, d_model] (its EMBED value for
 * layer 0, else the RESID value of encoder block layer - 1), and recomputes
 * the cross-attention keys and values; the decoder positions are dropped, as
 * after attn_session_encode, so an attn_session_forward follows. Captures
 * are offered for encoder blocks layer .. n_encoder_layers-1. ATTN_ERR_USAGE
 * for another model, a bad layer, a NULL x or another source length. */
ATTN_API attn_status attn_session_reencode_from(attn_session *s, int layer, const float *x, int S,
                                               const attn_capture *cap, attn_error *err);

/* Ablation (compute/ablate.c): a capture whose edit (attn_capture.edit)
 * knocks out heads or MLPs as the forward pass makes them, so that every
 * later value (maps of later layers, context, logits) shows the effect.
 * A head is ablated in its sub-layer's concatenated heads (ATTN_V_CONCAT),
 * before the o projection: zero sets its context to 0, mean replaces each
 * position's context by the head's mean context over the positions of the
 * input (so its output is its mean output), or by its mean over a batch of
 * inputs (attn_ablation_means). An MLP's output (ATTN_V_MLP_OUT) is zeroed
 * or replaced by its mean likewise. */
typedef enum { ATTN_ABLATE_ZERO, ATTN_ABLATE_MEAN } attn_ablate_mode;
/* Fixed means for mean ablation: every head's context (ATTN_V_CONCAT) and
 * every MLP's output (ATTN_V_MLP_OUT), of both stacks, averaged over every
 * position of every input run through its capture (the unablated model's,
 * as long as no ablation is in that run). */
typedef struct attn_ablation_means attn_ablation_means;
ATTN_API attn_status attn_ablation_means_new(attn_ablation_means **m, const attn_config *cfg,
                                             attn_error *err);
ATTN_API void attn_ablation_means_free(attn_ablation_means *m);
/* A capture that adds up the values of each run it is given to (emit only:
 * it changes nothing). Its emit fails with ATTN_ERR_NOMEM, or
 * ATTN_ERR_FORMAT when a value changes width. */
ATTN_API attn_capture attn_ablation_means_capture(attn_ablation_means *m);
/* Turns the sums into means; ATTN_ERR_USAGE when no position was seen.
 * The capture must not be used after. */
ATTN_API attn_status attn_ablation_means_finish(attn_ablation_means *m, attn_error *err);
/* Positions the means are over (after finish). */
ATTN_API long attn_ablation_means_positions(const attn_ablation_means *m);
typedef struct attn_ablate_spec {
    bool source;         /* the encoder stack of an encoder-decoder ("encoder:") */
    bool mlp;            /* an MLP ("mlp:L"), else attention heads */
    attn_attn_kind kind; /* heads: self, or cross ("cross:L.H") */
    int layer, head;     /* head -1: every head of the layer ("L.*") */
} attn_ablate_spec;
#define ATTN_ABLATE_MAX 256
typedef struct attn_ablation {
    attn_ablate_spec specs[ATTN_ABLATE_MAX];
    int n;
    attn_ablate_mode mode;
    int n_heads, head_dim; /* from the config (attn_ablation_parse) */
    /* mean mode: finished means to use (not owned), else NULL: each
     * input's own mean over its positions */
    const attn_ablation_means *means;
} attn_ablation;
/* Parses a comma-separated list of specs against the model's config into
 * *a (mode zero; set a->mode after): "L.H" (head H of self-attention in
 * layer L), "L.*" (all its heads), "cross:L.H", "cross:L.*", "mlp:L", and
 * the same after "encoder:" for the encoder of an encoder-decoder.
 * ATTN_ERR_USAGE with one line naming the spec and the valid range. */
ATTN_API attn_status attn_ablation_parse(attn_ablation *a, const char *s, const attn_config *cfg,
                                         attn_error *err);
ATTN_API attn_capture attn_ablation_capture(attn_ablation *a);

/* Activation patching (compute/patch.c): a capture that records the values
 * of one run (the "from" run, e.g. a clean input) at the sites a name
 * pattern matches, and in a later run (the "into" run, e.g. a corrupted
 * input) replaces exactly one unit of them by its recorded value, through
 * the capture's edit, so that everything after it is computed from it.
 *
 *   sites   "PREFIX.L.attn.context" (ATTN_V_CONCAT of self-attention),
 *           "PREFIX.L.cross.context" (of cross-attention),
 *           "PREFIX.L.mlp.out" (ATTN_V_MLP_OUT), "PREFIX.L.resid" (ATTN_V_RESID);
 *           PREFIX "blocks" (the main stack) or "encoder.blocks"
 *   units   a context site's heads: head h is its columns h*head_dim .. of the
 *           concatenation, at every position ("blocks.1.attn.context.h2");
 *           an mlp.out or resid site's positions: one row of [T, D]
 *
 * The pattern is a comma-separated list of names in which '*' stands for
 * any characters (dots too); a name matches a site's name, or for heads
 * also the unit's name, whole: "blocks.*.attn.context", "blocks.1.resid",
 * "blocks.0.attn.context.h3", "*.mlp.out", "*". Names hold letters, digits,
 * '.', '_' and '*'.
 *
 * Positions: the into run's position p reads the from run's position
 * p + shift (shift 0, or from_len - into_len with ATTN_PATCH_ALIGN_RIGHT);
 * a unit whose position has no counterpart is not made. Encoder sites use
 * the source length on both sides (one source for both runs). */
typedef enum {
    ATTN_PATCH_ALIGN_NONE,  /* the two runs must have the same length */
    ATTN_PATCH_ALIGN_LEFT,  /* first positions paired: p with p */
    ATTN_PATCH_ALIGN_RIGHT, /* last positions paired: into's last with from's last */
} attn_patch_align;
typedef struct attn_patch_unit {
    attn_value value;    /* ATTN_V_CONCAT, ATTN_V_MLP_OUT or ATTN_V_RESID */
    bool source;         /* the encoder of an encoder-decoder */
    attn_attn_kind kind; /* ATTN_V_CONCAT: self or cross */
    int layer;
    int head;            /* ATTN_V_CONCAT: the head; -1 otherwise */
    int pos;             /* MLP_OUT, RESID: the position in the into run; -1 for heads */
} attn_patch_unit;
typedef struct attn_patch attn_patch;
/* A patching capture for the model of cfg and the sites pattern matches.
 * ATTN_ERR_USAGE (one line naming the pattern) when it is malformed or
 * matches no site of this model; ATTN_ERR_NOMEM. */
ATTN_API attn_status attn_patch_new(attn_patch **out, const attn_config *cfg, const char *pattern,
                                    attn_error *err);
ATTN_API void attn_patch_free(attn_patch *p);
/* Does pattern (as above) match name whole? false for a malformed pattern. */
ATTN_API bool attn_patch_match(const char *pattern, const char *name);
/* Makes the units for a from run of from_len positions, an into run of
 * into_len and a source of src_len (encoder-decoder; else 0). Different
 * lengths with ATTN_PATCH_ALIGN_NONE are ATTN_ERR_USAGE, as are lengths a
 * position-matching pattern leaves no unit for. */
ATTN_API attn_status attn_patch_plan(attn_patch *p, int from_len, int into_len, int src_len,
                                     attn_patch_align align, attn_error *err);
ATTN_API size_t attn_patch_count(const attn_patch *p);            /* units of the plan */
ATTN_API const attn_patch_unit *attn_patch_at(const attn_patch *p, size_t i);
/* The unit's name: "blocks.1.attn.context.h2", "blocks.0.resid" (the
 * position apart); snprintf-like. */
ATTN_API size_t attn_patch_unit_name(const attn_patch_unit *u, char *buf, size_t cap);
/* What the capture does in the next runs: ATTN_PATCH_RECORD keeps the values
 * of every site (the from run; it must have from_len positions);
 * ATTN_PATCH_APPLY replaces unit `unit` by the recorded value (the into
 * run); ATTN_PATCH_PASS changes nothing. In every mode it keeps the last
 * position's logits (attn_patch_logits). A site recorded with other sizes
 * than the plan's, or applying before recording, fails the run with
 * ATTN_ERR_USAGE. */
typedef enum { ATTN_PATCH_PASS, ATTN_PATCH_RECORD, ATTN_PATCH_APPLY } attn_patch_mode;
ATTN_API attn_status attn_patch_set_mode(attn_patch *p, attn_patch_mode mode, size_t unit,
                                         attn_error *err);
ATTN_API attn_capture attn_patch_capture(attn_patch *p);
/* The logits [vocab_size] of the last position of the last run (models with
 * an lm_head), or NULL when none was seen since attn_patch_set_mode. */
ATTN_API const float *attn_patch_logits(const attn_patch *p);

/* Direct logit attribution (compute/lens.c): the logit of one target token
 * at each position of the main stack split into the direct contribution of
 * each part of the residual stream, as TransformerLens does: the stream
 * after the last block is the sum of the embeddings, of each attention
 * head's output (its context times its columns of the o projection), each
 * sub-layer's o bias, and each MLP's output; the final norm is linear in it
 * once its scale (the standard deviation, or RMS, of that stream at the
 * position) is frozen, so the logit is the sum of the parts' projections
 * plus the final norm's bias term. Pre-norm models only (in a post-norm
 * model the stream is normed after each sub-layer and is no such sum).
 *
 * Use: attn_attribution_new, then run the input with attn_attribution_capture
 * as (or among) the sinks of attn_session_forward, then
 * attn_attribution_finish, which divides by the frozen scales and checks
 * that the parts sum to the model's logit within 1e-4 * max(1, |logit|)
 * (ATTN_ERR_INTERNAL otherwise). The parts are then read in order with
 * attn_attribution_count / attn_attribution_part. Reset (attn_attribution_new
 * again, or attn_attribution_reset) before the next input. */
typedef enum {
    ATTN_PART_EMBED,      /* the embeddings (after embed_norm) */
    ATTN_PART_HEAD,       /* one head of self- or cross-attention (kind, layer, head) */
    ATTN_PART_ATTN_BIAS,  /* the o projection's bias of a sub-layer (kind, layer) */
    ATTN_PART_MLP,        /* an MLP's output (layer) */
    ATTN_PART_NORM_BIAS,  /* the final layernorm's bias, through the unembedding */
} attn_part_type;
typedef struct attn_attribution_part {
    attn_part_type type;
    attn_attn_kind kind; /* heads and biases */
    int layer, head;     /* -1 where it does not apply */
    const double *logit; /* [T] the direct contribution at each position */
} attn_attribution_part;
typedef struct attn_attribution attn_attribution;
ATTN_API attn_status attn_attribution_new(attn_attribution **out, const attn_model *m, int target,
                                          attn_error *err);
ATTN_API void attn_attribution_free(attn_attribution *a);
ATTN_API void attn_attribution_reset(attn_attribution *a);
ATTN_API attn_capture attn_attribution_capture(attn_attribution *a);
ATTN_API attn_status attn_attribution_finish(attn_attribution *a, attn_error *err);
ATTN_API int attn_attribution_positions(const attn_attribution *a); /* T of the input */
ATTN_API int attn_attribution_row_offset(const attn_attribution *a); /* position of row 0 */
ATTN_API size_t attn_attribution_count(const attn_attribution *a);
ATTN_API const attn_attribution_part *attn_attribution_at(const attn_attribution *a, size_t i);
/* The model's logit of the target at each position: [T], after finish. */
ATTN_API const double *attn_attribution_logit(const attn_attribution *a);

/* ------------------------------------------------------------------------ */
/* Next-token predictions (predict.c)                                        */

typedef struct attn_prediction {
    int id;       /* token id */
    float logit;  /* the row's entry */
    double prob;  /* softmax over the whole row, computed in double */
} attn_prediction;

/* The k largest entries of one logits row [V], best first; equal logits go
 * to the lower id (a NaN ranks below every number). out is [k], k in 1..V.
 * O(V log k). */
ATTN_API attn_status attn_topk(attn_prediction *out, int k, const float *logits, int V, attn_error *err);
/* Greedy choice: the id of the largest entry of row [V], the lowest id on
 * ties; -1 when V < 1. */
ATTN_API int attn_argmax(const float *row, int V);
/* Token id's entry of one logits row [V] with its probability (the same
 * softmax as attn_topk); ATTN_ERR_USAGE when id is not in 0..V-1. */
ATTN_API attn_status attn_token_prediction(attn_prediction *out, const float *logits, int V, int id,
                                           attn_error *err);
/* Token id's rank in row [V] from 1, in attn_topk's order (the rank k of
 * the k-th of attn_topk's answer); 0 when id is not in 0..V-1. O(V). */
ATTN_API int attn_token_rank(const float *logits, int V, int id);

/* ------------------------------------------------------------------------ */
/* Importing llama2.c checkpoints (import_llama2c.c)                         */

/* What a llama2.c checkpoint header says, validated. Two layouts:
 *   version 0 (legacy): 7 int32 (dim, hidden_dim, n_layers, n_heads,
 *     n_kv_heads, vocab_size, seq_len; vocab_size < 0 = separate classifier),
 *     then float32 tok_embeddings [V, D], attention norms [L, D], wq [L, D, D],
 *     wk, wv [L, KV*hd, D], wo [L, D, D], ffn norms [L, D], w1 [L, F, D],
 *     w2 [L, D, F], w3 [L, F, D], final norm [D], two rope tables
 *     [seq_len, hd/2], [classifier [V, D]].
 *   version 1: uint32 magic 0x616b3432 ("ak42"), int32 version 1, the 7
 *     int32 (vocab_size > 0), uint8 shared_classifier, zeros up to byte 256,
 *     then attention norms, ffn norms, final norm, tok_embeddings, wq, wk, wv,
 *     wo, w1, w2, w3, [classifier]; no rope tables.
 * All little-endian. */
typedef struct attn_llama2c_header {
    int version;            /* 0 legacy, 1 */
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; /* all > 0 */
    bool shared_classifier; /* the classifier is tok_embeddings */
    size_t header_bytes;    /* 28 or 256 */
    uint64_t file_bytes;    /* the exact file size the header implies */
} attn_llama2c_header;

/* Parses and validates the header of a checkpoint image buf[len] (len = the
 * whole file's size; only the header bytes are read): every field positive
 * and at most 2^24, n_heads % n_kv_heads == 0, dim % n_heads == 0, an even
 * head_dim, sizes overflow-checked, and len equal to the size the header
 * implies. `name` names the buffer in messages. */
ATTN_API attn_status attn_llama2c_parse_header(attn_llama2c_header *h, const void *buf, size_t len,
                                       const char *name, attn_error *err);

#define ATTN_IMPORT_FORCE 1u /* write into an existing non-empty out_dir */
/* Converts a llama2.c checkpoint (read into memory) and its tokenizer.bin
 * into out_dir/config.json, out_dir/model.safetensors and out_dir/tokenizer.bin.
 * The files are written into a fresh folder next to out_dir, checked by
 * loading them as a model, then renamed into place, so nothing appears
 * unless everything succeeded. out_dir must not exist or be empty, unless
 * flags has ATTN_IMPORT_FORCE (then those three files in it are replaced
 * and other files are left alone). */
ATTN_API attn_status attn_import_llama2c(const char *checkpoint, const char *tokenizer,
                                 const char *out_dir, unsigned flags, attn_error *err);

/* ------------------------------------------------------------------------ */
/* Input vectors instead of tokens (embeddings.c): attn_input.embeddings     */

/* Parses input vectors from memory into *out, malloc'd [*rows, d_model]
 * floats (the caller frees it with free()). The buffer is a .npy image when
 * it begins with the .npy magic "\x93NUMPY" (a `name` ending in ".npy"
 * requires it), else CSV text:
 *   CSV:  one row of d_model comma-separated numbers per position; blank
 *         lines and lines starting with '#' are skipped; a first row none of
 *         whose fields is a number is a header and skipped; no inf / nan.
 *   .npy: version 1-3, dtype '<f4' or '<f8', C order, shape (T, d_model),
 *         no bytes after the data; every value finite and within float32.
 * max_rows > 0 refuses more rows (pass max_seq_len). Malformed content
 * fails with ATTN_ERR_FORMAT; rows of another width than d_model or more
 * than max_rows with ATTN_ERR_USAGE. Messages name `name` and the line and
 * column (CSV) or element / header field (.npy). */
ATTN_API attn_status attn_embeddings_parse(float **out, size_t *rows, const void *buf, size_t len,
                                   int d_model, int max_rows, const char *name, attn_error *err);
/* Reads the file `path` and parses it (name = path). */
ATTN_API attn_status attn_embeddings_load(float **out, size_t *rows, const char *path, int d_model,
                                  int max_rows, attn_error *err);

#ifdef __cplusplus
}
#endif
#endif
