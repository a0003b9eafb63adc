# Tokenizer (engine/tokenizer*.c) and chat formats (engine/chat.c).
#   test_tokenizer        real vocabularies of ../shared/tokenizers against Hugging Face's ids
#   test_tokenizer_files  small hand-written tokenizer.json files: BPE rules, added tokens, post-processors,
#                         and malformed / unsupported files (one-line errors naming the field)
#   test_chat             the built-in chat formats against the real templates' output
#   tokenize_cli          `specscope tokenize` end to end (ids, --jsonl, exit codes)
specscope_unit_test(test_tokenizer SOURCES test_tokenizer.c LABELS tokenizer)
specscope_unit_test(test_tokenizer_files SOURCES test_tokenizer_files.c LABELS tokenizer)
specscope_unit_test(test_chat SOURCES test_chat.c LABELS tokenizer)
target_link_libraries(test_tokenizer PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_tokenizer test_chat PROPERTIES SKIP_RETURN_CODE 77)

add_test(NAME tokenize_cli COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tokenize_cli.sh $<TARGET_FILE:specscope>
         ${SPECSCOPE_SHARED_DIR}/tokenizers)
set_tests_properties(tokenize_cli PROPERTIES LABELS "tokenizer;cli" SKIP_RETURN_CODE 77)
