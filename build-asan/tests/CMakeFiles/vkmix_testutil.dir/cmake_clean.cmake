file(REMOVE_RECURSE
  "CMakeFiles/vkmix_testutil.dir/testutil.c.o"
  "CMakeFiles/vkmix_testutil.dir/testutil.c.o.d"
  "libvkmix_testutil.a"
  "libvkmix_testutil.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/vkmix_testutil.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
