file(REMOVE_RECURSE
  "CMakeFiles/test_external_device.dir/test_external_device.c.o"
  "CMakeFiles/test_external_device.dir/test_external_device.c.o.d"
  "test_external_device"
  "test_external_device.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/test_external_device.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
