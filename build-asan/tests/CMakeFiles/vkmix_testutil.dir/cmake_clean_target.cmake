file(REMOVE_RECURSE
  "libvkmix_testutil.a"
)
