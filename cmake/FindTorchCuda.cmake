# Decides SOFTSIGN_CUDA (compile our CUDA kernels) from SOFTSIGN_WITH_CUDA = AUTO/ON/OFF
# (the environment variable of that name overrides the cache), and prepares what
# find_package(Torch) needs for a CUDA build of torch: its CMake config enables the CUDA
# language and wants the toolkit even when we compile no CUDA source ourselves.
# TORCH_CUDA_ARCH_LIST (environment) picks the architectures, as for torch extensions.
if(DEFINED ENV{SOFTSIGN_WITH_CUDA})
  # Cached, so a re-configure triggered by the build keeps the choice.
  set(SOFTSIGN_WITH_CUDA "$ENV{SOFTSIGN_WITH_CUDA}" CACHE STRING "" FORCE)
endif()
string(TOUPPER "${SOFTSIGN_WITH_CUDA}" _want_cuda)

find_package(Python QUIET COMPONENTS Interpreter)
set(_torch_cuda "")
if(Python_Interpreter_FOUND)
  execute_process(COMMAND ${Python_EXECUTABLE} -c "import torch; print(torch.version.cuda or '')"
    OUTPUT_VARIABLE _torch_cuda OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()

include(CheckLanguage)
if(NOT CMAKE_CUDA_COMPILER AND DEFINED ENV{CUDA_HOME} AND EXISTS "$ENV{CUDA_HOME}/bin/nvcc")
  set(CMAKE_CUDA_COMPILER "$ENV{CUDA_HOME}/bin/nvcc")
endif()
if(_torch_cuda OR _want_cuda STREQUAL "ON" OR _want_cuda STREQUAL "1")
  check_language(CUDA)
endif()

set(SOFTSIGN_CUDA OFF)
if(CMAKE_CUDA_COMPILER AND NOT _want_cuda STREQUAL "OFF" AND NOT _want_cuda STREQUAL "0")
  set(SOFTSIGN_CUDA ON)
elseif(_want_cuda STREQUAL "ON" OR _want_cuda STREQUAL "1")
  message(FATAL_ERROR "SOFTSIGN_WITH_CUDA=ON but no CUDA compiler was found")
endif()

if(CMAKE_CUDA_COMPILER)
  # Torch's CMake config turns TORCH_CUDA_ARCH_LIST into -gencode flags and ignores
  # CMAKE_CUDA_ARCHITECTURES; without a GPU to detect it would build every architecture.
  if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} OR "$ENV{TORCH_CUDA_ARCH_LIST}" STREQUAL "")
    set(ENV{TORCH_CUDA_ARCH_LIST} "8.0;9.0")
  endif()
  set(CMAKE_CUDA_ARCHITECTURES OFF)
  enable_language(CUDA)
  # Torch's headers need C++20. CMake 3.25 knows no CUDA20 dialect flag for nvcc, so the
  # flag is given directly rather than through CMAKE_CUDA_STANDARD.
  string(APPEND CMAKE_CUDA_FLAGS " -std=c++20")
  # Torch's FindCUDA looks beside nvcc; a wrapper script on PATH hides the toolkit.
  if(NOT CUDA_TOOLKIT_ROOT_DIR AND CMAKE_CUDA_COMPILER_TOOLKIT_ROOT)
    set(CUDA_TOOLKIT_ROOT_DIR "${CMAKE_CUDA_COMPILER_TOOLKIT_ROOT}" CACHE PATH "")
  endif()
  # Torch's CMake config wants libnvrtc; pip's torch ships it beside itself when the
  # system toolkit does not.
  if(Python_Interpreter_FOUND)
    execute_process(COMMAND ${Python_EXECUTABLE} -c
      "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))"
      OUTPUT_VARIABLE _site OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    file(GLOB _nvrtc_dirs "${_site}/nvidia/*/lib" "${_site}/nvidia/cuda_nvrtc/lib")
    find_library(CUDA_nvrtc_LIBRARY NAMES nvrtc libnvrtc.so.13 libnvrtc.so.12
      HINTS "${CUDA_TOOLKIT_ROOT_DIR}/lib64" ${_nvrtc_dirs})
    # ATen's CUDA headers include cusparse.h; a toolkit without the math libraries lacks
    # it, pip's torch ships it. Searched after the toolkit (-idirafter) so the toolkit's
    # own runtime headers win.
    set(SOFTSIGN_CUDA_FALLBACK_INCLUDES "")
    if(NOT EXISTS "${CUDA_TOOLKIT_ROOT_DIR}/include/cusparse.h")
      file(GLOB _pip_cusparse "${_site}/nvidia/*/include/cusparse.h")
      foreach(_h IN LISTS _pip_cusparse)
        get_filename_component(_dir "${_h}" DIRECTORY)
        list(APPEND SOFTSIGN_CUDA_FALLBACK_INCLUDES "${_dir}")
      endforeach()
    endif()
  endif()
elseif(_torch_cuda)
  message(WARNING "torch was built with CUDA ${_torch_cuda} but no nvcc was found: "
    "torch's CMake config needs the CUDA toolkit (set CUDA_HOME)")
endif()
message(STATUS "softsign: CUDA kernels ${SOFTSIGN_CUDA} (TORCH_CUDA_ARCH_LIST=$ENV{TORCH_CUDA_ARCH_LIST})")
