# Runs one C example for ctest:
#   cmake -DEXE=<program> -DSRC=<source.c> -P RunExample.cmake
# Prints the program's output, then checks that it exited 0 and that every
# `// expect: <regex>` line of SRC matches the output. Any failure prints
# RASK_EXAMPLE_FAILED (the test's FAIL_REGULAR_EXPRESSION) and exits non-zero:
# ctest ignores exit codes once PASS_REGULAR_EXPRESSION is set.
if(NOT EXE OR NOT SRC)
  message(FATAL_ERROR "RASK_EXAMPLE_FAILED: usage: cmake -DEXE=prog -DSRC=file.c -P RunExample.cmake")
endif()

execute_process(COMMAND "${EXE}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out
  TIMEOUT 100)
message("${out}")

set(failures)
if(NOT result STREQUAL "0")
  list(APPEND failures "exit status: ${result}")
endif()
file(STRINGS "${SRC}" expect_lines REGEX "^// expect: ")
foreach(line IN LISTS expect_lines)
  string(REGEX REPLACE "^// expect: " "" re "${line}")
  if(NOT out MATCHES "${re}")
    list(APPEND failures "output does not match: ${re}")
  endif()
endforeach()

if(failures)
  foreach(f IN LISTS failures)
    message("RASK_EXAMPLE_FAILED: ${f}")
  endforeach()
  message(FATAL_ERROR "example ${EXE} failed")
endif()
