# Empty compiler generated dependencies file for test_external_device.
# This may be replaced when dependencies are built.
