file(REMOVE_RECURSE
  "libvkmix.a"
)
