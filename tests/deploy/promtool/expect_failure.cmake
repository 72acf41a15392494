# cmake -DCMD="prog;arg;..." -DEXPECT=REGEX -P expect_failure.cmake
# Runs CMD and succeeds only if it exits non-zero AND its output (stdout and stderr) matches EXPECT,
# so a negative test cannot pass because of a missing file or a crash with some other message.
if(NOT DEFINED CMD OR NOT DEFINED EXPECT)
  message(FATAL_ERROR "expect_failure.cmake: CMD and EXPECT are required")
endif()
execute_process(
  COMMAND ${CMD}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "expected a failure, but it exited 0:\n${out}")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "exited ${rc} as expected, but the output does not match \"${EXPECT}\":\n${out}")
endif()
message(STATUS "failed as expected (exit ${rc})")
