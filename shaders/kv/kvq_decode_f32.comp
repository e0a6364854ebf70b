#version 450
#extension GL_GOOGLE_include_directive : require
// The FP32-arithmetic decode attention over packed groups (the body is in kvq_decode.glsl).
#define ACC_F32 1
#include "kvq_decode.glsl"
