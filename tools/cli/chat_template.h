/* Chat templates of the vkmix CLI: which family a model's
 * tokenizer.chat_template belongs to, and the text of one conversation turn.
 *
 * vkmix does not run Jinja: it recognises the common families by their
 * special-token markers and writes their turns by hand. The text returned for a
 * turn is meant to be tokenized with parse_special = 1. */
#ifndef VKMIX_CLI_CHAT_TEMPLATE_H
#define VKMIX_CLI_CHAT_TEMPLATE_H

typedef enum cli_template {
    CLI_TMPL_RAW = 0,  /* no template: the typed text is appended verbatim */
    CLI_TMPL_CHATML,   /* <|im_start|>role\n ... <|im_end|>\n   (qwen2, many fine-tunes) */
    CLI_TMPL_LLAMA3,   /* <|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|> */
    CLI_TMPL_LLAMA2,   /* [INST] <<SYS>>\n...\n<</SYS>>\n\n ... [/INST] */
    CLI_TMPL_MISTRAL,  /* [INST] ... [/INST] (no system role: it opens the first message) */
    CLI_TMPL_ZEPHYR,   /* <|user|>\n ... </s>\n<|assistant|>\n */
    CLI_TMPL_COUNT_
} cli_template;

/* The family of a tokenizer.chat_template text; CLI_TMPL_RAW when text is NULL
 * or no known marker is found. Markers: "<|im_start|>" chatml,
 * "<|start_header_id|>" llama3, "[INST]" llama2 (with "<<SYS>>") or mistral,
 * "<|user|>" zephyr. */
cli_template cli_template_detect(const char *text);

/* The special tokens the family's turns are written with that a model of that
 * family has as single tokens of its vocabulary (chatml: <|im_start|>,
 * <|im_end|>; llama3: <|start_header_id|>, <|end_header_id|>, <|eot_id|>),
 * NULL after the last. The llama2, mistral and zephyr markers ([INST],
 * <|user|>) are plain text in many of their models: none are listed. */
const char *cli_template_special(cli_template t, int k);

/* "raw", "chatml", "llama3", "llama2", "mistral", "zephyr". */
const char *cli_template_name(cli_template t);
/* The family named `name` (case-insensitive), or -1. */
int cli_template_from_name(const char *name);
/* The names above, separated by ", ". */
const char *cli_template_names(void);

/* The text that adds one user message to the conversation and opens the
 * assistant's reply. first: 1 for the first turn of a conversation (the system
 * prompt goes there; BOS is not written: the tokenizer adds it), 0 for a later
 * turn (the text then starts by closing the previous assistant reply, whose
 * end-of-turn token was sampled but never evaluated). system may be NULL or "".
 * Returns a malloc'ed string, NULL when out of memory. */
char *cli_template_turn(cli_template t, const char *system, const char *user, int first);

#endif
