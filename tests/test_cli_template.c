/* The CLI's chat templates (tools/cli/chat_template.c): detection from
 * tokenizer.chat_template texts, names, and the exact text of first and later
 * turns for every family. */
#include <string.h>

#include "testutil.h"
#include "../tools/cli/chat_template.c"

static void check_turn(cli_template t, const char *sys, const char *user, int first, const char *want)
{
    char *got = cli_template_turn(t, sys, user, first);
    CHECK(got && strcmp(got, want) == 0, "%s first=%d: got \"%s\", want \"%s\"", cli_template_name(t), first,
          got ? got : "(null)", want);
    free(got);
}

int main(void)
{
    /* excerpts of real templates (Qwen2, Llama 3, Llama 2, Mistral, Zephyr) */
    CHECK(cli_template_detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                              "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}") == CLI_TMPL_CHATML,
          "chatml");
    CHECK(cli_template_detect("{% set content = '<|start_header_id|>' + message['role'] + "
                              "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}") ==
              CLI_TMPL_LLAMA3,
          "llama3");
    CHECK(cli_template_detect("{% if system %}{{ '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{% endif %}"
                              "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}") == CLI_TMPL_LLAMA2,
          "llama2");
    CHECK(cli_template_detect("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + "
                              "' [/INST]' }}{% endfor %}") == CLI_TMPL_MISTRAL,
          "mistral");
    CHECK(cli_template_detect("{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + "
                              "eos_token }}{% endif %}") == CLI_TMPL_ZEPHYR,
          "zephyr");
    CHECK(cli_template_detect(NULL) == CLI_TMPL_RAW, "NULL");
    CHECK(cli_template_detect("{{ messages }}") == CLI_TMPL_RAW, "unknown");

    for (int i = 0; i < CLI_TMPL_COUNT_; i++)
        CHECK(cli_template_from_name(cli_template_name((cli_template)i)) == i, "name round trip %d", i);
    CHECK(cli_template_from_name("ChatML") == CLI_TMPL_CHATML, "case-insensitive");
    CHECK(cli_template_from_name("chatm") < 0 && cli_template_from_name("chatmlx") < 0 &&
              cli_template_from_name("") < 0 && cli_template_from_name(NULL) < 0,
          "unknown names");

    check_turn(CLI_TMPL_CHATML, "Be brief.", "Hi", 1,
               "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    check_turn(CLI_TMPL_CHATML, "Be brief.", "And?", 0,
               "<|im_end|>\n<|im_start|>user\nAnd?<|im_end|>\n<|im_start|>assistant\n");
    check_turn(CLI_TMPL_CHATML, NULL, "Hi", 1, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    check_turn(CLI_TMPL_LLAMA3, "S", "Hi", 1,
               "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>"
               "\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    check_turn(CLI_TMPL_LLAMA3, "S", "Hi", 0,
               "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant"
               "<|end_header_id|>\n\n");
    check_turn(CLI_TMPL_LLAMA2, "S", "Hi", 1, "[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST]");
    check_turn(CLI_TMPL_LLAMA2, "S", "Hi", 0, " </s><s>[INST] Hi [/INST]");
    check_turn(CLI_TMPL_MISTRAL, "S", "Hi", 1, "[INST] S\n\nHi [/INST]");
    check_turn(CLI_TMPL_MISTRAL, "", "Hi", 1, "[INST] Hi [/INST]");
    check_turn(CLI_TMPL_MISTRAL, "S", "Hi", 0, "</s>[INST] Hi [/INST]");
    check_turn(CLI_TMPL_ZEPHYR, "S", "Hi", 1, "<|system|>\nS</s>\n<|user|>\nHi</s>\n<|assistant|>\n");
    check_turn(CLI_TMPL_ZEPHYR, "S", "Hi", 0, "</s>\n<|user|>\nHi</s>\n<|assistant|>\n");
    check_turn(CLI_TMPL_RAW, "S", "Once upon", 1, "S\nOnce upon");
    check_turn(CLI_TMPL_RAW, "S", " a time", 0, " a time");
    check_turn(CLI_TMPL_RAW, NULL, "", 1, "");
    return tu_finish("test_cli_template");
}
