#version 450
#extension GL_GOOGLE_include_directive : require
// The FP16-arithmetic decode attention over packed groups (the body is in kvq_decode.glsl).
#include "kvq_decode.glsl"
