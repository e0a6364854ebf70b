file(REMOVE_RECURSE
  "CMakeFiles/vkmix.dir/spv/copy_spv.c.o"
  "CMakeFiles/vkmix.dir/spv/copy_spv.c.o.d"
  "CMakeFiles/vkmix.dir/src/context_stub.c.o"
  "CMakeFiles/vkmix.dir/src/context_stub.c.o.d"
  "CMakeFiles/vkmix.dir/src/error.c.o"
  "CMakeFiles/vkmix.dir/src/error.c.o.d"
  "CMakeFiles/vkmix.dir/src/half.c.o"
  "CMakeFiles/vkmix.dir/src/half.c.o.d"
  "CMakeFiles/vkmix.dir/usr/include/volk.c.o"
  "CMakeFiles/vkmix.dir/usr/include/volk.c.o.d"
  "libvkmix.a"
  "libvkmix.pdb"
  "spv/copy_spv.c"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/vkmix.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
