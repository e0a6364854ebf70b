file(REMOVE_RECURSE
  "CMakeFiles/vkmix-bench.dir/tools/vkmix-bench.c.o"
  "CMakeFiles/vkmix-bench.dir/tools/vkmix-bench.c.o.d"
  "vkmix-bench"
  "vkmix-bench.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/vkmix-bench.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
