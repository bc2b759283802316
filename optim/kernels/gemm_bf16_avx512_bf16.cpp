// The f32 GEMM family with bf16 products for AVX-512 BF16 (train --precision bf16): the packed GEMM's driver
// (engine/kernels/gemm_f32.hpp) with operands rounded to bf16 while they are packed (vcvtne2ps2bf16, round to
// nearest even) and multiplied by vdpbf16ps, which adds two bf16 products into each f32 sum: twice the
// multiply-adds of an f32 FMA per instruction. Built with the AVX-512 BF16 flags, run only where the CPU has them.
#include "optim/kernels/gemm_bf16_operands.hpp"

namespace edgeqc {

// Installed by optim/training_kernels.cpp where the CPU has AVX-512 BF16.
void install_gemm_bf16_avx512_bf16(TrainingKernelTable& table) { install_bf16_gemm<Bf16Operands>(table); }

}  // namespace edgeqc
