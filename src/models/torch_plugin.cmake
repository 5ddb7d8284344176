# The TorchScript backend (included by src/models/CMakeLists.txt).
#
# torchscript_model.cc is always part of slipway_models: it dlopen()s the
# LibTorch plugin at run time and reports it missing when it is. The plugin
# itself, libslipway_torch.so, builds only where libtorch-dev is installed,
# and lands next to the `slipway` binary (${CMAKE_BINARY_DIR}), where the
# loader looks first. Nothing else links LibTorch.
target_sources(slipway_models PRIVATE torchscript_model.cc)
target_link_libraries(slipway_models PRIVATE absl::synchronization
                                             ${CMAKE_DL_LIBS})

# Torch's package config sets plain variables (TORCH_CXX_FLAGS, Caffe2_*,
# MKL*, protobuf's) besides its imported targets: finding it inside a
# function keeps them out of this directory's scope, so they cannot reach
# slipway_models or the tests. Its flags (-D_GLIBCXX_USE_CXX11_ABI=1,
# -pthread) travel only as usage requirements of the imported `torch`
# target, which only slipway_torch links.
function(slipway_find_torch)
  find_package(Torch QUIET)
  set(SLIPWAY_TORCH_FOUND "${Torch_FOUND}" PARENT_SCOPE)
  set(SLIPWAY_TORCH_LIBRARIES "${TORCH_LIBRARIES}" PARENT_SCOPE)
endfunction()
slipway_find_torch()

if(SLIPWAY_TORCH_FOUND)
  add_library(slipway_torch MODULE torch_plugin.cc)
  target_link_libraries(slipway_torch PRIVATE ${SLIPWAY_TORCH_LIBRARIES})
  # Only the C ABI of torch_plugin_api.h is exported. Hidden visibility
  # covers the plugin's own code; the version script also hides the vague
  # linkage (typeinfo, vtables, inline templates) that LibTorch's headers
  # mark visible. An unresolved symbol fails the link, not the dlopen.
  set(slipway_torch_exports ${CMAKE_CURRENT_BINARY_DIR}/torch_plugin.map)
  file(WRITE ${slipway_torch_exports}
    "{\n  global: slipway_torch_*;\n  local: *;\n};\n")
  target_compile_options(slipway_torch PRIVATE -fvisibility=hidden
                                               -fvisibility-inlines-hidden)
  target_link_options(slipway_torch PRIVATE -Wl,--no-undefined
    -Wl,--version-script=${slipway_torch_exports})
  set_property(TARGET slipway_torch APPEND PROPERTY
    LINK_DEPENDS ${slipway_torch_exports})
  # LibTorch 1.13 supports C++14/17: under C++20, clang (the
  # thread_safety_annotations check) rejects its headers.
  set_target_properties(slipway_torch PROPERTIES
    CXX_STANDARD 17
    OUTPUT_NAME slipway_torch
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

  slipway_test(torchscript_model_test SOURCES torchscript_model_test.cc
    LIBS slipway_models slipway_testing absl::strings)
  add_dependencies(torchscript_model_test slipway_torch)
  target_compile_definitions(torchscript_model_test PRIVATE
    SLIPWAY_TORCH_PLUGIN_PATH="$<TARGET_FILE:slipway_torch>")
endif()
