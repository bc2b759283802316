// The training kernel list and its tables.
#include "optim/training_kernels.hpp"

#include <map>
#include <mutex>

#include "engine/error.hpp"
#include "optim/kernels/adam_f32.hpp"

namespace edgeqc {

void adam_f32_reference(const AdamStepF32&, std::ptrdiff_t, float*, const float*, float*, float*);
void gemm_bf16_reference(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int,
                         const GemmEpilogue&, float*);
std::size_t gemm_workspace_bf16_reference(int, int, int, bool);
std::size_t gemm_pack_a_bf16_reference(bool, int, int, const float*, int, float*);
void gemm_packed_a_bf16_reference(bool, int, int, int, float, const float*, const float*, int, float, float*, int,
                                  const GemmEpilogue&, float*);
#if defined(__x86_64__)
void install_gemm_bf16_avx512_bf16(TrainingKernelTable& table);  // optim/kernels/gemm_bf16_avx512_bf16.cpp
void install_gemm_bf16_amx_bf16(TrainingKernelTable& table);     // optim/kernels/gemm_bf16_amx_bf16.cpp
#endif

namespace {

template <class Arch>
void adam_f32(const AdamStepF32& step, std::ptrdiff_t n, float* parameters, const float* gradients, float* m,
              float* v) {
    SimdAdamF32<Arch>{}(step, n, parameters, gradients, m, v);
}

template <class Arch>
void install_adam_f32(TrainingKernelTable& t) { t.adam_f32 = adam_f32<Arch>; }
void install_adam_f32_reference(TrainingKernelTable& t) { t.adam_f32 = adam_f32_reference; }
void install_gemm_bf16_reference(TrainingKernelTable& t) {
    t.gemm_bf16 = gemm_bf16_reference;
    t.gemm_workspace_bf16 = gemm_workspace_bf16_reference;
    t.gemm_pack_a_bf16 = gemm_pack_a_bf16_reference;
    t.gemm_packed_a_bf16 = gemm_packed_a_bf16_reference;
}

std::vector<KernelListing<TrainingKernelTable>> build_list() {
    std::vector<KernelListing<TrainingKernelTable>> list;
#if defined(__x86_64__)
    list.push_back({"gemm", DataType::BF16, "amx_bf16", cpu_has_amx_bf16, install_gemm_bf16_amx_bf16});
    list.push_back({"gemm", DataType::BF16, "avx512_bf16", cpu_has_avx512_bf16, install_gemm_bf16_avx512_bf16});
    list.push_back({"adam", DataType::F32, "avx512", cpu_has_avx512, install_adam_f32<xsimd::avx512bw>});
    list.push_back({"adam", DataType::F32, "avx2", cpu_has_avx2_fma, install_adam_f32<xsimd::fma3<xsimd::avx2>>});
    list.push_back({"adam", DataType::F32, "sse2", any_cpu, install_adam_f32<xsimd::sse2>});
#elif defined(__aarch64__)
    list.push_back({"adam", DataType::F32, "neon64", any_cpu, install_adam_f32<xsimd::neon64>});
#endif
    list.push_back({"adam", DataType::F32, "scalar", any_cpu, install_adam_f32_reference});
    list.push_back({"gemm", DataType::BF16, "scalar", any_cpu, install_gemm_bf16_reference});
    return list;
}

}  // namespace

const std::vector<KernelListing<TrainingKernelTable>>& training_kernel_list() {
    static const std::vector<KernelListing<TrainingKernelTable>> list = build_list();
    return list;
}

const TrainingKernelTable& training_kernels() {
    // One table per arch the runtime has been switched to, built on first use and kept.
    static std::mutex mutex;
    static std::map<std::string, TrainingKernelTable> tables;
    const std::string& arch = kernels().name;
    const std::lock_guard<std::mutex> lock(mutex);
    auto found = tables.find(arch);
    if (found == tables.end()) found = tables.emplace(arch, assemble_kernel_table(training_kernel_list(), arch)).first;
    return found->second;
}

KernelTable with_bf16_products(const KernelTable& base, const TrainingKernelTable& training) {
    KernelTable table = base;
    table.gemm_f32 = training.gemm_bf16;
    table.gemm_workspace_f32 = training.gemm_workspace_bf16;
    table.gemm_pack_a_f32 = training.gemm_pack_a_bf16;
    table.gemm_packed_a_f32 = training.gemm_packed_a_bf16;
    // No narrow GEMM and no convolution GEMM from the image with bf16 products: their callers then keep to the
    // packed GEMM (and im2col).
    table.gemm_pack_a_narrow_f32 = nullptr;
    table.gemm_narrow_f32 = nullptr;
    table.gemm_conv3x3_pack_a_f32 = nullptr;
    table.gemm_conv3x3_workspace_f32 = nullptr;
    table.gemm_conv3x3_f32 = nullptr;
    table.name += " (bf16 products)";
    table.product_bits = 8;
    return table;
}

const KernelTable& bf16_product_kernels() {
    static std::mutex mutex;
    static std::map<std::string, KernelTable> tables;
    const KernelTable& runtime = kernels();
    const TrainingKernelTable& training = training_kernels();
    if (training.gemm_bf16 == gemm_bf16_reference && runtime.name != "scalar")
        throw Error("bf16 training (--precision bf16) needs a CPU with AVX-512 BF16, which this one lacks: train with "
                    "--precision f32, or resume a bf16 run on a CPU that has it");
    const std::lock_guard<std::mutex> lock(mutex);
    auto found = tables.find(runtime.name);
    if (found == tables.end()) found = tables.emplace(runtime.name, with_bf16_products(runtime, training)).first;
    return found->second;
}

const TrainingKernelTable& reference_training_kernels() {
    static const TrainingKernelTable table = assemble_kernel_table(training_kernel_list(), "scalar");
    return table;
}

const std::vector<const TrainingKernelTable*>& available_training_kernel_tables() {
    static const std::vector<TrainingKernelTable> tables = arch_tables(training_kernel_list());
    static const std::vector<const TrainingKernelTable*> pointers = pointers_to(tables);
    return pointers;
}

}  // namespace edgeqc
