/* test_chat.c — the built-in chat formats (engine/chat.c) against the real templates.
 *
 * The expected prompts are what the chat_template strings of ../shared/tokenizers/{llama3,qwen3,llama2}
 * render with add_generation_prompt=true for a 3-turn conversation (system, user, assistant, user,
 * assistant, user), rendered with a Jinja implementation (@huggingface/jinja), byte for byte. The
 * Mistral (v0.1 template) and ChatML-with-default-system (Qwen2.5 style) cases use small folders
 * written here; so do the fallbacks chosen from special tokens alone. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "specscope.h"

#define SKIPPED 77

static const ss_message CONVERSATION[] = {
    {"system", "You are a terse assistant."},
    {"user", "Hello!"},
    {"assistant", "Hi. How can I help?"},
    {"user", "  What is 2+2?\n"},
    {"assistant", "<think>\nadd them\n</think>\n\n4"},
    {"user", "Thanks. \xE8\xB0\xA2\xE8\xB0\xA2 \xF0\x9F\xA6\x99"}, /* "Thanks. 谢谢 🦙" */
};
#define N_CONVERSATION 6

static const char LLAMA3_PROMPT[] =
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a terse assistant.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\nHi. How can I help?<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n<think>\nadd them\n</think>\n\n4<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nThanks. \xE8\xB0\xA2\xE8\xB0\xA2 \xF0\x9F\xA6\x99<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n";

/* Qwen3 drops the reasoning of turns before the last user message. */
static const char QWEN3_PROMPT[] =
    "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n"
    "<|im_start|>user\nHello!<|im_end|>\n"
    "<|im_start|>assistant\nHi. How can I help?<|im_end|>\n"
    "<|im_start|>user\n  What is 2+2?\n<|im_end|>\n"
    "<|im_start|>assistant\n4<|im_end|>\n"
    "<|im_start|>user\nThanks. \xE8\xB0\xA2\xE8\xB0\xA2 \xF0\x9F\xA6\x99<|im_end|>\n"
    "<|im_start|>assistant\n";

static const char LLAMA2_PROMPT[] =
    "<s>[INST] <<SYS>>\nYou are a terse assistant.\n<</SYS>>\n\nHello! [/INST] Hi. How can I help? </s>"
    "<s>[INST] What is 2+2? [/INST] <think>\nadd them\n</think>\n\n4 </s>"
    "<s>[INST] Thanks. \xE8\xB0\xA2\xE8\xB0\xA2 \xF0\x9F\xA6\x99 [/INST]";

static char dir[64];

static ss_chat_format *detect(const ss_tokenizer *tok) {
    ss_chat_format *fmt = NULL;
    ss_error err;
    ss_status st = ss_chat_format_detect(tok, &fmt, &err);
    CHECK_MSG(st == SS_OK && fmt, "detect: %s", err.msg);
    return fmt;
}

static void expect_render(const ss_chat_format *fmt, const ss_message *msgs, int n, const char *want) {
    char *text = NULL;
    ss_error err;
    ss_status st = ss_chat_format_render(fmt, msgs, n, &text, &err);
    CHECK_MSG(st == SS_OK && text && strcmp(text, want) == 0, "%s: rendered\n%s\n--- expected\n%s", ss_chat_format_name(fmt),
              text ? text : err.msg, want);
    free(text);
}

static bool has_stop(const ss_chat_format *fmt, int id) {
    int ids[16];
    int n = ss_chat_format_stop_ids(fmt, ids, 16);
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

/* The rendered prompt, encoded without adding special tokens, starts with BOS exactly once. */
static void expect_single_bos(const ss_tokenizer *tok, const ss_chat_format *fmt, int bos) {
    char *text = NULL;
    ss_error err;
    ss_ids ids = {0};
    CHECK(ss_chat_format_render(fmt, CONVERSATION, N_CONVERSATION, &text, &err) == SS_OK);
    CHECK(text && ss_tokenizer_encode(tok, text, strlen(text), false, &ids, &err) == SS_OK);
    CHECK_MSG(ids.n > 2 && ids.ids[0] == bos && ids.ids[1] != bos, "%s: the prompt does not start with one BOS", ss_chat_format_name(fmt));
    free(text);
    ss_ids_free(&ids);
}

static void real_templates(void) {
    static const struct {
        const char *name, *format, *prompt;
        int stops[3], bos;
    } CASES[] = {
        {"llama3", "llama3", LLAMA3_PROMPT, {128009, 128001, -1}, 128000},
        {"qwen3", "chatml", QWEN3_PROMPT, {151645, 151643, -1}, -1},
        {"llama2", "llama2", LLAMA2_PROMPT, {2, -1, -1}, 1},
    };
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        char path[512];
        snprintf(path, sizeof path, "%s/tokenizers/%s", SHARED_DIR, CASES[c].name);
        ss_tokenizer *tok = NULL;
        ss_error err;
        CHECK_MSG(ss_tokenizer_load(path, &tok, &err) == SS_OK, "%s", err.msg);
        if (!tok) continue;
        ss_chat_format *fmt = detect(tok);
        if (fmt) {
            CHECK_MSG(strcmp(ss_chat_format_name(fmt), CASES[c].format) == 0, "%s: format %s", CASES[c].name, ss_chat_format_name(fmt));
            expect_render(fmt, CONVERSATION, N_CONVERSATION, CASES[c].prompt);
            for (int k = 0; k < 3 && CASES[c].stops[k] >= 0; k++)
                CHECK_MSG(has_stop(fmt, CASES[c].stops[k]), "%s: %d is not a stop id", CASES[c].name, CASES[c].stops[k]);
            if (CASES[c].bos >= 0) expect_single_bos(tok, fmt, CASES[c].bos);
            ss_message bad = {"tool", "x"};
            char *text = NULL;
            CHECK(ss_chat_format_render(fmt, &bad, 1, &text, &err) == SS_EARG && text == NULL && strstr(err.msg, "tool"));
        }
        ss_chat_format_free(fmt);
        ss_tokenizer_free(tok);
    }
}

/* ---------------------------------------------------------------- small folders */

static void write_file(const char *name, const char *text) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!text) {
        unlink(path);
        return;
    }
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static const char TOKENIZER[] =
    "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"<s>\":0,\"</s>\":1,\"<|im_start|>\":2,\"<|im_end|>\":3,\"x\":4},\"merges\":[]},"
    "\"added_tokens\":[{\"id\":0,\"content\":\"<s>\",\"special\":true},{\"id\":1,\"content\":\"</s>\",\"special\":true},"
    "{\"id\":2,\"content\":\"<|im_start|>\",\"special\":true},{\"id\":3,\"content\":\"<|im_end|>\",\"special\":true}],"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[0],\"tokens\":[\"<s>\"]}}}}";

/* Mistral-7B-Instruct-v0.1's template. */
static const char MISTRAL_CONFIG[] =
    "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"chat_template\":\"{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + "
    "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception("
    "'Only user and assistant roles are supported!') }}{% endif %}{% endfor %}\"}";

/* Qwen2.5's template, without its tools branches: a system prompt of its own when none is given. */
static const char QWEN25_CONFIG[] =
    "{\"eos_token\":\"<|im_end|>\",\"chat_template\":\"{%- if messages[0]['role'] == 'system' %}\\n"
    "    {{- '<|im_start|>system\\\\n' + messages[0]['content'] + '<|im_end|>\\\\n' }}\\n{%- else %}\\n"
    "    {{- '<|im_start|>system\\\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\\\n' }}\\n"
    "{%- endif %}\\n{%- for message in messages %}\\n"
    "    {{- '<|im_start|>' + message.role + '\\\\n' + message.content + '<|im_end|>' + '\\\\n' }}\\n{%- endfor %}\\n"
    "{%- if add_generation_prompt %}\\n    {{- '<|im_start|>assistant\\\\n' }}\\n{%- endif %}\\n\"}";

static const ss_message SHORT[] = {{"user", "Hi"}, {"assistant", " Hello there "}, {"user", "Bye\n\n"}};

static ss_chat_format *detect_folder(const char *config, ss_tokenizer **tok) {
    write_file("tokenizer.json", TOKENIZER);
    write_file("tokenizer_config.json", config);
    ss_error err;
    *tok = NULL;
    CHECK_MSG(ss_tokenizer_load(dir, tok, &err) == SS_OK, "%s", err.msg);
    return *tok ? detect(*tok) : NULL;
}

static void small_folders(void) {
    ss_tokenizer *tok;
    ss_chat_format *fmt = detect_folder(MISTRAL_CONFIG, &tok);
    if (fmt) {
        CHECK(strcmp(ss_chat_format_name(fmt), "mistral") == 0);
        expect_render(fmt, SHORT, 3, "<s>[INST] Hi [/INST] Hello there </s>[INST] Bye\n\n [/INST]");
        /* v0.1 has no system role: it goes in front of the first user message. */
        ss_message with_system[] = {{"system", "Be brief."}, {"user", "Hi"}};
        expect_render(fmt, with_system, 2, "<s>[INST] Be brief.\n\nHi [/INST]");
        CHECK(has_stop(fmt, 1));
    }
    ss_chat_format_free(fmt);
    ss_tokenizer_free(tok);

    fmt = detect_folder(QWEN25_CONFIG, &tok);
    if (fmt) {
        CHECK(strcmp(ss_chat_format_name(fmt), "chatml") == 0);
        expect_render(fmt, SHORT, 3,
                      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n Hello there <|im_end|>\n"
                      "<|im_start|>user\nBye\n\n<|im_end|>\n<|im_start|>assistant\n");
        ss_message with_system[] = {{"system", "S"}, {"user", "U"}};
        expect_render(fmt, with_system, 2, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
        CHECK(has_stop(fmt, 3));
    }
    ss_chat_format_free(fmt);
    ss_tokenizer_free(tok);

    /* No template: the ChatML special tokens decide. */
    fmt = detect_folder("{\"eos_token\":\"</s>\"}", &tok);
    if (fmt) {
        CHECK(strcmp(ss_chat_format_name(fmt), "chatml") == 0);
        CHECK(has_stop(fmt, 3) && has_stop(fmt, 1));
    }
    ss_chat_format_free(fmt);
    ss_tokenizer_free(tok);

    /* An unknown template: the plain format, led by the BOS the post-processor would add. */
    fmt = detect_folder("{\"eos_token\":\"</s>\",\"chat_template\":\"{% for m in messages %}{{ m.content }}{% endfor %}\"}", &tok);
    if (fmt) {
        CHECK(strcmp(ss_chat_format_name(fmt), "plain") == 0);
        ss_message msgs[] = {{"system", "S"}, {"user", "U"}, {"assistant", "A"}, {"user", "V"}};
        expect_render(fmt, msgs, 4, "<s>S\n\nUser: U\nAssistant: A\nUser: V\nAssistant:");
        CHECK(has_stop(fmt, 1));
    }
    ss_chat_format_free(fmt);
    ss_tokenizer_free(tok);
    write_file("tokenizer.json", NULL);
    write_file("tokenizer_config.json", NULL);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ss_chat_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    small_folders();
    rmdir(dir);
    char probe[512];
    snprintf(probe, sizeof probe, "%s/tokenizers/llama3/tokenizer_config.json", SHARED_DIR);
    if (access(probe, R_OK) != 0) {
        printf("SKIPPED (after %d checks on written folders): %s is missing\n", check_passed, probe);
        return check_failed ? 1 : SKIPPED;
    }
    real_templates();
    return check_done();
}
