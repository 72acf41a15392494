# Build conventions shared by every target: the C++ standard, warnings, and the helpers that leaf
# CMakeLists.txt files use to declare targets. Leaf files only declare; policy lives here.

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

option(DISTILL_BUILD_TESTS "Build the tests under tests/" ON)
option(DISTILL_WERROR "Treat warnings in project code as errors" ON)
option(DISTILL_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

find_program(DISTILL_CCACHE ccache)
if(DISTILL_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${DISTILL_CCACHE}")
endif()

if(DISTILL_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# The torch wheel's libtorch_cpu.so (built with GCC 13) exports its own copy of parts of libstdc++,
# std::filesystem among them. Ahead of libstdc++ in a binary's library list, it would serve our GCC 12
# code's calls with code built for other headers (path handling crashed). Naming libstdc++ first in every
# link puts Debian's copy first in the lookup order (tests/common/student/runtime/stack_test checks it).
add_link_options(LINKER:--push-state,--no-as-needed -lstdc++ LINKER:--pop-state)

# Warning flags for code we write (generated code gets none of them).
set(DISTILL_WARNINGS -Wall -Wextra -Wno-unused-parameter)
if(DISTILL_WERROR)
  list(APPEND DISTILL_WARNINGS -Werror)
endif()

# Target names follow the folder: common/config -> distill_common_config.
function(distill_target_name out_var)
  file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${CMAKE_CURRENT_SOURCE_DIR}")
  string(REPLACE "/" "_" name "distill_${rel}")
  set(${out_var} "${name}" PARENT_SCOPE)
endfunction()

# distill_cc_library(SRCS a.cc ... DEPS target ...)
# Declares the library of the current folder, named after its path. Headers are included by their
# path from the repository root ("common/config/config.h").
function(distill_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  if(ARG_NAME)
    set(name ${ARG_NAME})
  else()
    distill_target_name(name)
  endif()
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC "${PROJECT_SOURCE_DIR}" "${PROJECT_BINARY_DIR}/gen")
  target_compile_options(${name} PRIVATE ${DISTILL_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  set(DISTILL_LAST_TARGET ${name} PARENT_SCOPE)
endfunction()

# distill_cc_binary(NAME distill-curator SRCS main.cc DEPS ...)
function(distill_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${DISTILL_WARNINGS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin")
endfunction()

# distill_cc_test(NAME config_test SRCS config_test.cc DEPS ... [LABELS unit] [ENV K=V ...])
# Builds a GoogleTest binary and registers each of its tests with CTest. The test target name is
# prefixed with the folder's path so names stay unique across tests/.
function(distill_cc_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS;ENV;DEFINES" ${ARGN})
  distill_target_name(prefix)
  set(target "${prefix}_${ARG_NAME}")
  add_executable(${target} ${ARG_SRCS})
  target_compile_options(${target} PRIVATE ${DISTILL_WARNINGS})
  # Tests find the source and build trees at run time (tests/support/paths.h), not through the compile
  # command, so a clone in another folder compiles the same commands and ccache serves them.
  if(ARG_DEFINES)
    target_compile_definitions(${target} PRIVATE ${ARG_DEFINES})
  endif()
  target_link_libraries(${target} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  gtest_discover_tests(${target}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}" ENVIRONMENT "${ARG_ENV}")
endfunction()

# distill_embed_target_file(OUT_VAR var TARGET target SYMBOL name)
# Generates a .cc file that holds the built file of `target` (e.g. a MODULE library) as a byte array
# named `name` (see cmake/EmbedFile.cmake), and stores its path in `var` for a library's SRCS.
function(distill_embed_target_file)
  cmake_parse_arguments(ARG "" "OUT_VAR;TARGET;SYMBOL" "" ${ARGN})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${ARG_TARGET}_embedded.cc")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND "${CMAKE_COMMAND}" "-DINPUT=$<TARGET_FILE:${ARG_TARGET}>" "-DOUTPUT=${out}" "-DSYMBOL=${ARG_SYMBOL}"
            -P "${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake"
    DEPENDS ${ARG_TARGET} "${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake"
    COMMENT "Embedding ${ARG_TARGET}")
  set(${ARG_OUT_VAR} "${out}" PARENT_SCOPE)
endfunction()
