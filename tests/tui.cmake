# The terminal interface (tui/): its pure parts as unit tests, the whole program driven in tmux,
# and the REPL fed from a pipe.
set(TUI_SOURCE_DIR ${CMAKE_SOURCE_DIR}/tui)
function(tui_unit_test name)
  specscope_unit_test(${name} SOURCES tui/${name}.c ${ARGN} LABELS unit tui)
  target_include_directories(${name} PRIVATE ${TUI_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE PkgConfig::NCURSESW)
endfunction()
tui_unit_test(test_tui_meters ${TUI_SOURCE_DIR}/meters.c)
tui_unit_test(test_tui_layout ${TUI_SOURCE_DIR}/layout.c)
tui_unit_test(test_tui_transcript ${TUI_SOURCE_DIR}/transcript.c)
tui_unit_test(test_tui_spec ${TUI_SOURCE_DIR}/spec_stats.c ${TUI_SOURCE_DIR}/spec_view.c
              ${TUI_SOURCE_DIR}/styled_text.c ${TUI_SOURCE_DIR}/meters.c)
tui_unit_test(test_tui_timeline ${TUI_SOURCE_DIR}/timeline.c ${TUI_SOURCE_DIR}/trace_feed.c)

# Both drive the program on the demo pair and skip (77) without it. The tmux test also checks that
# the sanitizer build (when this is one) wrote no report.
add_test(NAME tui_tmux COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tui/tui_tmux.sh $<TARGET_FILE:specscope>)
add_test(NAME tui_repl COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tui/repl.sh $<TARGET_FILE:specscope>)
set_tests_properties(tui_tmux tui_repl PROPERTIES LABELS "tui;cli" SKIP_RETURN_CODE 77 TIMEOUT 300)
