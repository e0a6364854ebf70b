// Dot products of four packed 8-bit lanes (byte k of each word), as SPIR-V's
// OpSDot / OpUDot / OpSUDot with PackedVectorFormat4x8Bit:
//   sdot4(a, b)  = sum_k int8(a_k)  * int8(b_k)
//   udot4(a, b)  = sum_k uint8(a_k) * uint8(b_k)
//   sudot4(a, b) = sum_k int8(a_k)  * uint8(b_k)
// With VKM_IDOT defined (the build compiles a second module, see
// CMakeLists.txt) they are the native instructions (one IDP4A on NVIDIA),
// emitted through GL_EXT_spirv_intrinsics because Debian 12's glslang has no
// GL_EXT_integer_dot_product; the module then needs the device feature
// shaderIntegerDotProduct. Without it they are plain integer arithmetic,
// for devices without the feature.
#ifdef VKM_IDOT
#extension GL_EXT_spirv_intrinsics : require
// 6019 DotProduct, 6018 DotProductInput4x8BitPacked; opcodes 4450 OpSDot, 4451 OpUDot, 4452 OpSUDot;
// the literal 0 is PackedVectorFormat4x8Bit
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int spv_sdot4(uint a, uint b, spirv_literal int fmt);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4451)
uint spv_udot4(uint a, uint b, spirv_literal int fmt);
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4452)
int spv_sudot4(uint a, uint b, spirv_literal int fmt);
int sdot4(uint a, uint b) { return spv_sdot4(a, b, 0); }
int udot4(uint a, uint b) { return int(spv_udot4(a, b, 0)); }
int sudot4(uint a, uint b) { return spv_sudot4(a, b, 0); }
#else
int sb8(uint w, int k) { return bitfieldExtract(int(w), 8 * k, 8); }
int ub8(uint w, int k) { return int(bitfieldExtract(w, 8 * k, 8)); }
int sdot4(uint a, uint b) { return sb8(a, 0) * sb8(b, 0) + sb8(a, 1) * sb8(b, 1) + sb8(a, 2) * sb8(b, 2) + sb8(a, 3) * sb8(b, 3); }
int udot4(uint a, uint b) { return ub8(a, 0) * ub8(b, 0) + ub8(a, 1) * ub8(b, 1) + ub8(a, 2) * ub8(b, 2) + ub8(a, 3) * ub8(b, 3); }
int sudot4(uint a, uint b) { return sb8(a, 0) * ub8(b, 0) + sb8(a, 1) * ub8(b, 1) + sb8(a, 2) * ub8(b, 2) + sb8(a, 3) * ub8(b, 3); }
#endif
