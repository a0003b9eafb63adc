# Speculative decoding (engine/spec.c) and sessions.
specscope_unit_test(test_spec SOURCES test_spec.c core_checkpoint.c LABELS unit)

# The streamed pieces of a generation add up to its text, also when it stops inside a character.
add_test(NAME stream_tail COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/stream_tail.sh $<TARGET_FILE:specscope>
         ${PROJECT_SOURCE_DIR}/models/demo/target)
set_tests_properties(stream_tail PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77)

# A chat generation from token ids stops at the chat format's end-of-turn token.
add_test(NAME chat_stop COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/chat_stop.sh $<TARGET_FILE:specscope>
         ${PROJECT_SOURCE_DIR}/models/demo/target)
set_tests_properties(chat_stop PROPERTIES LABELS "cli" SKIP_RETURN_CODE 77)
