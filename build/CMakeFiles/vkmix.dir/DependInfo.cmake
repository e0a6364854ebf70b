
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/build/spv/copy_spv.c" "CMakeFiles/vkmix.dir/spv/copy_spv.c.o" "gcc" "CMakeFiles/vkmix.dir/spv/copy_spv.c.o.d"
  "/work/main/build/spv/kvq_dequant_k_spv.c" "CMakeFiles/vkmix.dir/spv/kvq_dequant_k_spv.c.o" "gcc" "CMakeFiles/vkmix.dir/spv/kvq_dequant_k_spv.c.o.d"
  "/work/main/build/spv/kvq_dequant_v_spv.c" "CMakeFiles/vkmix.dir/spv/kvq_dequant_v_spv.c.o" "gcc" "CMakeFiles/vkmix.dir/spv/kvq_dequant_v_spv.c.o.d"
  "/work/main/build/spv/kvq_quant_k_spv.c" "CMakeFiles/vkmix.dir/spv/kvq_quant_k_spv.c.o" "gcc" "CMakeFiles/vkmix.dir/spv/kvq_quant_k_spv.c.o.d"
  "/work/main/build/spv/kvq_quant_v_spv.c" "CMakeFiles/vkmix.dir/spv/kvq_quant_v_spv.c.o" "gcc" "CMakeFiles/vkmix.dir/spv/kvq_quant_v_spv.c.o.d"
  "/work/main/src/bench_kvq.c" "CMakeFiles/vkmix.dir/src/bench_kvq.c.o" "gcc" "CMakeFiles/vkmix.dir/src/bench_kvq.c.o.d"
  "/work/main/src/context.c" "CMakeFiles/vkmix.dir/src/context.c.o" "gcc" "CMakeFiles/vkmix.dir/src/context.c.o.d"
  "/work/main/src/error.c" "CMakeFiles/vkmix.dir/src/error.c.o" "gcc" "CMakeFiles/vkmix.dir/src/error.c.o.d"
  "/work/main/src/half.c" "CMakeFiles/vkmix.dir/src/half.c.o" "gcc" "CMakeFiles/vkmix.dir/src/half.c.o.d"
  "/work/main/src/kvquant.c" "CMakeFiles/vkmix.dir/src/kvquant.c.o" "gcc" "CMakeFiles/vkmix.dir/src/kvquant.c.o.d"
  "/work/main/src/kvquant_ref.c" "CMakeFiles/vkmix.dir/src/kvquant_ref.c.o" "gcc" "CMakeFiles/vkmix.dir/src/kvquant_ref.c.o.d"
  "/work/main/src/pipelines.c" "CMakeFiles/vkmix.dir/src/pipelines.c.o" "gcc" "CMakeFiles/vkmix.dir/src/pipelines.c.o.d"
  "/work/main/src/vk_buffer.c" "CMakeFiles/vkmix.dir/src/vk_buffer.c.o" "gcc" "CMakeFiles/vkmix.dir/src/vk_buffer.c.o.d"
  "/work/main/src/vk_cmd.c" "CMakeFiles/vkmix.dir/src/vk_cmd.c.o" "gcc" "CMakeFiles/vkmix.dir/src/vk_cmd.c.o.d"
  "/work/main/src/vk_device.c" "CMakeFiles/vkmix.dir/src/vk_device.c.o" "gcc" "CMakeFiles/vkmix.dir/src/vk_device.c.o.d"
  "/usr/include/volk.c" "CMakeFiles/vkmix.dir/usr/include/volk.c.o" "gcc" "CMakeFiles/vkmix.dir/usr/include/volk.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
