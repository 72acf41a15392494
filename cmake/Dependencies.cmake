# Finds the system packages distill links. Each becomes an imported target so leaf CMakeLists.txt files
# only name targets.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

# gRPC and protobuf through pkg-config, as Debian packages them. Reflection has no .pc file.
pkg_check_modules(GRPCPP REQUIRED IMPORTED_TARGET grpc++ protobuf)
find_library(DISTILL_GRPCPP_REFLECTION grpc++_reflection REQUIRED)
add_library(distill_grpc INTERFACE)
target_link_libraries(distill_grpc INTERFACE PkgConfig::GRPCPP)
add_library(distill_grpc_reflection INTERFACE)
target_link_libraries(distill_grpc_reflection INTERFACE ${DISTILL_GRPCPP_REFLECTION} distill_grpc)
find_program(DISTILL_PROTOC protoc REQUIRED)
find_program(DISTILL_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

# Debian ships abseil's CMake package files.
find_package(absl REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
add_library(distill_httplib INTERFACE)
target_link_libraries(distill_httplib INTERFACE PkgConfig::HTTPLIB)

# libcurl (Debian's OpenSSL flavour, libcurl4-openssl-dev) for the outbound HTTP client.
if(NOT TARGET distill_curl)
  pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
  add_library(distill_curl INTERFACE)
  target_link_libraries(distill_curl INTERFACE PkgConfig::CURL)
endif()

# SQLite (durable state: the teacher gateway's response cache, the coordinator's job store) and OpenSSL's
# libcrypto (SHA-256 content hashes).
if(NOT TARGET distill_sqlite3)
  pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
  add_library(distill_sqlite3 INTERFACE)
  target_link_libraries(distill_sqlite3 INTERFACE PkgConfig::SQLITE3)
endif()
if(NOT TARGET distill_crypto)
  pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET libcrypto)
  add_library(distill_crypto INTERFACE)
  target_link_libraries(distill_crypto INTERFACE PkgConfig::OPENSSL)
endif()

# SentencePiece (the student's tokenizer): Debian's libsentencepiece-dev, whose .pc file names both the
# processor and the trainer library.
if(NOT TARGET distill_sentencepiece)
  pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
  add_library(distill_sentencepiece INTERFACE)
  target_link_libraries(distill_sentencepiece INTERFACE PkgConfig::SENTENCEPIECE)
endif()

# libtorch (the student model) is the one inside the pinned torch wheel, in the virtualenv that
# scripts/install-deps.sh creates at ~/.cache/distill/venv-<first 12 hex of the requirements' SHA-256>
# (DISTILL_CACHE overrides ~/.cache/distill; -DDISTILL_PYTHON=... names another interpreter).
# torch.utils.cmake_prefix_path points CMake at its TorchConfig.cmake.
file(SHA256 "${PROJECT_SOURCE_DIR}/scripts/python-requirements.txt" DISTILL_REQUIREMENTS_SHA256)
string(SUBSTRING "${DISTILL_REQUIREMENTS_SHA256}" 0 12 DISTILL_REQUIREMENTS_HASH)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             "${PROJECT_SOURCE_DIR}/scripts/python-requirements.txt")
if(DEFINED ENV{DISTILL_CACHE})
  set(DISTILL_VENV "$ENV{DISTILL_CACHE}/venv-${DISTILL_REQUIREMENTS_HASH}")
else()
  set(DISTILL_VENV "$ENV{HOME}/.cache/distill/venv-${DISTILL_REQUIREMENTS_HASH}")
endif()
set(DISTILL_PYTHON "" CACHE FILEPATH "Python with the pinned torch (empty: the install script's virtualenv)")
if(DISTILL_PYTHON)
  set(DISTILL_VENV_PYTHON "${DISTILL_PYTHON}")
else()
  set(DISTILL_VENV_PYTHON "${DISTILL_VENV}/bin/python")
endif()
if(NOT EXISTS "${DISTILL_VENV_PYTHON}")
  message(FATAL_ERROR "${DISTILL_VENV_PYTHON} does not exist: run scripts/install-deps.sh, which creates the "
                      "virtualenv for scripts/python-requirements.txt")
endif()
execute_process(
  COMMAND "${DISTILL_VENV_PYTHON}" -c "import torch, torch.utils; print(torch.utils.cmake_prefix_path); print(torch.__version__)"
  OUTPUT_VARIABLE DISTILL_TORCH_PROBE OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE DISTILL_TORCH_PROBE_RESULT)
if(NOT DISTILL_TORCH_PROBE_RESULT EQUAL 0)
  message(FATAL_ERROR "${DISTILL_VENV_PYTHON} cannot import torch: run scripts/install-deps.sh")
endif()
string(REPLACE "\n" ";" DISTILL_TORCH_PROBE "${DISTILL_TORCH_PROBE}")
list(GET DISTILL_TORCH_PROBE 0 DISTILL_TORCH_CMAKE_PREFIX)
list(GET DISTILL_TORCH_PROBE 1 DISTILL_TORCH_VERSION)
list(PREPEND CMAKE_PREFIX_PATH "${DISTILL_TORCH_CMAKE_PREFIX}")
message(STATUS "libtorch ${DISTILL_TORCH_VERSION} from ${DISTILL_TORCH_CMAKE_PREFIX}")

# The wheel's CUDA build finds the CUDA toolkit (nvcc, cudart, NVRTC) at configure time; Debian has none
# on PATH, so the toolkit's usual home is offered.
# NVIDIA's nvcc wheel in the virtualenv (the container build installs it) serves where there is none.
if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
elseif(NOT CMAKE_CUDA_COMPILER)
  get_filename_component(distill_venv_dir "${DISTILL_VENV_PYTHON}" DIRECTORY)
  file(GLOB distill_wheel_nvcc "${distill_venv_dir}/../lib/python3*/site-packages/nvidia/*/bin/nvcc")
  if(distill_wheel_nvcc)
    list(GET distill_wheel_nvcc 0 CMAKE_CUDA_COMPILER)
    get_filename_component(CUDAToolkit_ROOT "${CMAKE_CUDA_COMPILER}" DIRECTORY)
    get_filename_component(CUDAToolkit_ROOT "${CUDAToolkit_ROOT}" DIRECTORY)
  endif()
endif()

# distill compiles no CUDA code of its own (it calls libtorch's CUDA kernels), so the architecture list only
# has to stop TorchConfig from probing for a GPU with a test program, which fails without one.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
endif()

if(NOT TARGET distill_torch)
  find_package(Torch REQUIRED)
  # torch/include also holds protobuf 3.13's headers (torch's own copy, linked into libtorch_cpu with hidden
  # symbols). On the include path they would shadow Debian's protobuf 3.21, which gRPC and our generated
  # code use, so distill_torch sees a copy of torch/include without google/: links to every other entry.
  set(DISTILL_TORCH_INCLUDE "${PROJECT_BINARY_DIR}/torch-include")
  file(MAKE_DIRECTORY "${DISTILL_TORCH_INCLUDE}")
  set(distill_torch_include_dirs "")
  foreach(dir IN LISTS TORCH_INCLUDE_DIRS)
    if(EXISTS "${dir}/google/protobuf")
      string(MD5 key "${dir}")
      set(filtered "${DISTILL_TORCH_INCLUDE}/${key}")
      file(REMOVE_RECURSE "${filtered}")
      file(MAKE_DIRECTORY "${filtered}")
      file(GLOB entries RELATIVE "${dir}" "${dir}/*")
      foreach(entry IN LISTS entries)
        if(NOT entry STREQUAL "google")
          file(CREATE_LINK "${dir}/${entry}" "${filtered}/${entry}" SYMBOLIC)
        endif()
      endforeach()
      list(APPEND distill_torch_include_dirs "${filtered}")
    else()
      list(APPEND distill_torch_include_dirs "${dir}")
    endif()
  endforeach()
  # TORCH_LIBRARIES' targets carry torch/include in their interface too: strip it from them so the
  # filtered copy is the only one.
  foreach(target IN ITEMS torch torch_cpu torch_cuda c10 c10_cuda torch_library)
    if(TARGET ${target})
      get_target_property(includes ${target} INTERFACE_INCLUDE_DIRECTORIES)
      if(includes)
        list(REMOVE_ITEM includes ${TORCH_INCLUDE_DIRS})
        set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${includes}")
      endif()
    endif()
  endforeach()
  add_library(distill_torch INTERFACE)
  target_link_libraries(distill_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(distill_torch SYSTEM INTERFACE ${distill_torch_include_dirs})
  # Whether this libtorch was built with CUDA (the wheel is); then NCCL and CUDA devices are compiled in.
  if(TORCH_CUDA_LIBRARIES OR TARGET torch_cuda)
    set(DISTILL_TORCH_HAS_CUDA ON)
  else()
    set(DISTILL_TORCH_HAS_CUDA OFF)
  endif()
  message(STATUS "libtorch with CUDA: ${DISTILL_TORCH_HAS_CUDA}")
endif()

if(DISTILL_BUILD_TESTS)
  find_package(GTest REQUIRED)
  find_program(DISTILL_PROMTOOL promtool)
  if(NOT DISTILL_PROMTOOL)
    message(FATAL_ERROR "promtool not found: run scripts/install-deps.sh (Debian package 'prometheus')")
  endif()
endif()
