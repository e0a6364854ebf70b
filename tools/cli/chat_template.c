/* Chat template families of the vkmix CLI (see chat_template.h). */
#include "chat_template.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_names[CLI_TMPL_COUNT_] = { "raw", "chatml", "llama3", "llama2", "mistral", "zephyr" };

cli_template cli_template_detect(const char *text)
{
    if (!text) return CLI_TMPL_RAW;
    if (strstr(text, "<|im_start|>")) return CLI_TMPL_CHATML;
    if (strstr(text, "<|start_header_id|>")) return CLI_TMPL_LLAMA3;
    if (strstr(text, "[INST]")) return strstr(text, "<<SYS>>") ? CLI_TMPL_LLAMA2 : CLI_TMPL_MISTRAL;
    if (strstr(text, "<|user|>")) return CLI_TMPL_ZEPHYR;
    return CLI_TMPL_RAW;
}

const char *cli_template_special(cli_template t, int k)
{
    static const char *const chatml[] = { "<|im_start|>", "<|im_end|>", NULL };
    static const char *const llama3[] = { "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", NULL };
    const char *const *list = t == CLI_TMPL_CHATML ? chatml : t == CLI_TMPL_LLAMA3 ? llama3 : NULL;
    if (!list || k < 0) return NULL;
    for (int i = 0; i <= k; i++)
        if (!list[i]) return NULL;
    return list[k];
}

const char *cli_template_name(cli_template t)
{
    return (unsigned)t < CLI_TMPL_COUNT_ ? k_names[t] : "?";
}

int cli_template_from_name(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < CLI_TMPL_COUNT_; i++) {
        const char *a = name, *b = k_names[i];
        while (*a && *b && tolower((unsigned char)*a) == *b) a++, b++;
        if (!*a && !*b) return i;
    }
    return -1;
}

const char *cli_template_names(void)
{
    return "raw, chatml, llama3, llama2, mistral, zephyr";
}

/* A growing string; on allocation failure it stays failed and returns NULL at the end. */
typedef struct {
    char *p;
    size_t n, cap;
    int failed;
} sbuf;

static void sb_add(sbuf *b, const char *s)
{
    if (b->failed || !s) return;
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + k + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, k + 1);
    b->n += k;
}

static char *sb_done(sbuf *b)
{
    if (!b->p && !b->failed) sb_add(b, "");
    if (b->failed) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

char *cli_template_turn(cli_template t, const char *system, const char *user, int first)
{
    sbuf b = { 0 };
    const int sys = first && system && *system;
    if (!user) user = "";
    switch (t) {
    case CLI_TMPL_CHATML:
        if (!first) sb_add(&b, "<|im_end|>\n");
        if (sys) {
            sb_add(&b, "<|im_start|>system\n");
            sb_add(&b, system);
            sb_add(&b, "<|im_end|>\n");
        }
        sb_add(&b, "<|im_start|>user\n");
        sb_add(&b, user);
        sb_add(&b, "<|im_end|>\n<|im_start|>assistant\n");
        break;
    case CLI_TMPL_LLAMA3:
        if (!first) sb_add(&b, "<|eot_id|>");
        if (sys) {
            sb_add(&b, "<|start_header_id|>system<|end_header_id|>\n\n");
            sb_add(&b, system);
            sb_add(&b, "<|eot_id|>");
        }
        sb_add(&b, "<|start_header_id|>user<|end_header_id|>\n\n");
        sb_add(&b, user);
        sb_add(&b, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CLI_TMPL_LLAMA2:
        /* <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {reply} </s><s>[INST] {user} [/INST] */
        if (!first) sb_add(&b, " </s><s>");
        sb_add(&b, "[INST] ");
        if (sys) {
            sb_add(&b, "<<SYS>>\n");
            sb_add(&b, system);
            sb_add(&b, "\n<</SYS>>\n\n");
        }
        sb_add(&b, user);
        sb_add(&b, " [/INST]");
        break;
    case CLI_TMPL_MISTRAL:
        /* <s>[INST] {system}\n\n{user} [/INST]{reply}</s>[INST] {user} [/INST] */
        if (!first) sb_add(&b, "</s>");
        sb_add(&b, "[INST] ");
        if (sys) {
            sb_add(&b, system);
            sb_add(&b, "\n\n");
        }
        sb_add(&b, user);
        sb_add(&b, " [/INST]");
        break;
    case CLI_TMPL_ZEPHYR:
        if (!first) sb_add(&b, "</s>\n");
        if (sys) {
            sb_add(&b, "<|system|>\n");
            sb_add(&b, system);
            sb_add(&b, "</s>\n");
        }
        sb_add(&b, "<|user|>\n");
        sb_add(&b, user);
        sb_add(&b, "</s>\n<|assistant|>\n");
        break;
    case CLI_TMPL_RAW:
    default:
        if (sys) {
            sb_add(&b, system);
            sb_add(&b, "\n");
        }
        sb_add(&b, user);
        break;
    }
    return sb_done(&b);
}
