file(REMOVE_RECURSE
  "CMakeFiles/test_kvquant.dir/test_kvquant.c.o"
  "CMakeFiles/test_kvquant.dir/test_kvquant.c.o.d"
  "test_kvquant"
  "test_kvquant.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_kvquant.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
