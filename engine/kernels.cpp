// The kernel tables this build carries and the one-time choice between them: the only place that asks the
// CPU what it supports.
#include "engine/kernels.hpp"

#include <algorithm>
#include <cstdlib>

#if defined(__aarch64__)
#include <sys/auxv.h>
#elif defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "engine/error.hpp"
#include "engine/kernels/fma_peak_f32.hpp"
#include "engine/kernels/gemm_f32.hpp"
#include "engine/kernels/gemm_int.hpp"
#include "engine/kernels/max_pool_f32.hpp"
#include "engine/kernels/max_pool_u8.hpp"
#include "engine/kernels/quantize_u8.hpp"
#include "engine/kernels/winograd_f32.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

void gemm_f32_reference(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int,
                        const GemmEpilogue&, float*);
std::size_t gemm_workspace_f32_reference(int, int, int, bool);
std::size_t gemm_pack_a_f32_reference(bool, int, int, const float*, int, float*);
void gemm_packed_a_f32_reference(bool, int, int, int, float, const float*, const float*, int, float, float*, int,
                                 const GemmEpilogue&, float*);
std::size_t gemm_pack_a_narrow_f32_reference(int, int, const float*, int, float*);
void gemm_narrow_f32_reference(int, int, int, const float*, const float*, int, float*, int, const GemmEpilogue&);
std::size_t gemm_conv3x3_pack_a_f32_reference(int, int, const float*, float*);
std::size_t gemm_conv3x3_workspace_f32_reference(int, int, int, int, int);
void gemm_conv3x3_f32_reference(int, int, int, int, int, const float*, const float*, float*, const GemmEpilogue&,
                                float*);
void max_pool_2x2_f32_reference(const float*, int, int, int, float*, std::uint32_t*);
void max_pool_2x2_u8_reference(const std::uint8_t*, int, int, int, std::uint8_t*);
void quantize_u8_reference(const float*, std::size_t, float, int, std::uint8_t*);
void winograd_input_row_f32_reference(const float*, int, int, int, int, int, std::ptrdiff_t, float*, float*);
void winograd_output_row_f32_reference(const float*, std::ptrdiff_t, int, int, float, bool, bool, float*, int, int,
                                       int, float*);
void winograd_gradient_row_f32_reference(const float*, int, int, int, int, std::ptrdiff_t, float*, float*);
void winograd_f4_input_row_f32_reference(const float*, int, int, int, int, int, std::ptrdiff_t, float*, float*);
void winograd_f4_output_row_f32_reference(const float*, std::ptrdiff_t, int, int, float, bool, bool, float*, int,
                                          int, int, float*);
FmaPeakResult fma_peak_f32_reference(long iterations, float start);
std::size_t gemm_pack_a_s8_reference(int, int, const std::int8_t*, int, std::int8_t*);
std::size_t gemm_pack_a_s16_reference(int, int, const std::int16_t*, int, std::int16_t*);
std::size_t gemm_workspace_int_reference(int, int, int);
void gemm_packed_a_s8_reference(bool, int, int, int, const std::int8_t*, const std::uint8_t*, int,
                                const IntegerGemmEpilogue&, unsigned char*);
void gemm_packed_a_s16_reference(bool, int, int, int, const std::int16_t*, const std::int16_t*, int,
                                 const IntegerGemmEpilogue&, unsigned char*);
std::size_t gemm_conv3x3_pack_a_s8_reference(int, int, Conv3x3Order, const std::int8_t*, std::int8_t*);
std::size_t gemm_conv3x3_workspace_s8_reference(int, int, int, int);
void gemm_conv3x3_s8_reference(int, int, int, int, Conv3x3Order, const std::int8_t*, const std::uint8_t*,
                               std::uint8_t, bool, const IntegerGemmEpilogue&, unsigned char*);
std::size_t gemm_pack_b_s16_reference(bool, int, int, const std::int16_t*, int, std::int16_t*);
void gemm_packed_ab_s16_reference(int, int, int, const std::int16_t*, const std::int16_t*, const IntegerGemmEpilogue&);

namespace {

template <class Arch>
void packed_gemm_f32(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a, int lda,
                     const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                     float* workspace) {
    PackedGemmF32<Arch>{}(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue, workspace);
}

template <class Arch>
std::size_t gemm_workspace_f32(int m, int n, int k, bool a_packed) {
    return PackedGemmF32<Arch>{}.workspace_floats(m, n, k, a_packed);
}

template <class Arch>
std::size_t gemm_pack_a_f32(bool transpose_a, int m, int k, const float* a, int lda, float* packed) {
    return PackedGemmF32<Arch>{}.pack_a(transpose_a, m, k, a, lda, packed);
}

template <class Arch>
void gemm_packed_a_f32(bool transpose_b, int m, int n, int k, float alpha, const float* packed_a, const float* b,
                       int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue, float* workspace) {
    PackedGemmF32<Arch>{}.multiply(false, transpose_b, m, n, k, alpha, nullptr, 0, packed_a, b, ldb, beta, c, ldc,
                                   epilogue, workspace);
}

template <class Arch>
std::size_t gemm_pack_a_narrow_f32(int m, int k, const float* a, int lda, float* packed) {
    return PackedGemmF32<Arch>{}.pack_a_narrow(m, k, a, lda, packed);
}

template <class Arch>
void gemm_narrow_f32(int m, int n, int k, const float* packed_a, const float* b, int ldb, float* c, int ldc,
                     const GemmEpilogue& epilogue) {
    PackedGemmF32<Arch>{}.multiply_narrow(m, n, k, packed_a, b, ldb, c, ldc, epilogue);
}

template <class Arch>
std::size_t gemm_conv3x3_pack_a_f32(int m, int channels, const float* a, float* packed) {
    return PackedGemmF32<Arch>{}.conv3x3_pack_a(m, channels, a, packed);
}

template <class Arch>
std::size_t gemm_conv3x3_workspace_f32(int m, int channels, int height, int width, int images) {
    return PackedGemmF32<Arch>{}.conv3x3_workspace_floats(m, channels, height, width, images);
}

template <class Arch>
void gemm_conv3x3_f32(int m, int channels, int height, int width, int images, const float* packed_a, const float* x,
                      float* c, const GemmEpilogue& epilogue, float* workspace) {
    PackedGemmF32<Arch>{}.multiply_conv3x3(m, channels, height, width, images, packed_a, x, c, epilogue, workspace);
}

template <class Arch>
void max_pool_2x2_f32(const float* x, int planes, int height, int width, float* y, std::uint32_t* winners) {
    SimdMaxPool2x2F32<Arch>{}(x, planes, height, width, y, winners);
}

template <class Arch>
void max_pool_2x2_u8(const std::uint8_t* x, int planes, int height, int width, std::uint8_t* y) {
    SimdMaxPool2x2U8<Arch>{}(x, planes, height, width, y);
}

template <class Arch>
void quantize_u8(const float* x, std::size_t count, float scale, int zero_point, std::uint8_t* q) {
    SimdQuantizeU8<Arch>{}(x, count, scale, zero_point, q);
}

template <class Arch>
FmaPeakResult fma_peak_f32(long iterations, float start) {
    return FmaChainsF32<Arch>{}(iterations, start);
}

// The integer GEMM of one kind of operands (S8Operands or S16Operands), as plain functions.
template <class Operands, class Arch>
std::size_t gemm_pack_a_int(int m, int k, const typename Operands::A* a, int lda, typename Operands::A* packed) {
    return PackedGemmInt<Operands, Arch>{}.pack_a(m, k, a, lda, packed);
}

template <class Operands, class Arch>
std::size_t gemm_workspace_int(int m, int n, int k) {
    return PackedGemmInt<Operands, Arch>{}.workspace_bytes(m, n, k);
}

template <class Operands, class Arch>
void gemm_packed_a_int(bool transpose_b, int m, int n, int k, const typename Operands::A* packed_a,
                       const typename Operands::B* b, int ldb, const IntegerGemmEpilogue& epilogue,
                       unsigned char* workspace) {
    PackedGemmInt<Operands, Arch>{}.multiply(transpose_b, m, n, k, packed_a, b, ldb, epilogue, workspace);
}

template <class Arch>
std::size_t gemm_conv3x3_pack_a_s8(int m, int channels, Conv3x3Order order, const std::int8_t* a, std::int8_t* packed) {
    return PackedGemmInt<S8Operands, Arch>{}.pack_conv3x3_a(m, channels, order, a, packed);
}

template <class Arch>
std::size_t gemm_conv3x3_workspace_s8(int m, int channels, int height, int width) {
    return PackedGemmInt<S8Operands, Arch>{}.conv3x3_workspace_bytes(m, channels, height, width);
}

template <class Arch>
void gemm_conv3x3_s8(int m, int channels, int height, int width, Conv3x3Order order, const std::int8_t* packed_a,
                     const std::uint8_t* x, std::uint8_t padding, bool max_pool_2x2,
                     const IntegerGemmEpilogue& epilogue, unsigned char* workspace) {
    PackedGemmInt<S8Operands, Arch>{}.multiply_conv3x3(m, channels, height, width, order, packed_a, x, padding,
                                                       max_pool_2x2, epilogue, workspace);
}

template <class Operands, class Arch>
std::size_t gemm_pack_b_int(bool transpose_b, int n, int k, const typename Operands::B* b, int ldb,
                            typename Operands::B* packed) {
    return PackedGemmInt<Operands, Arch>{}.pack_b(transpose_b, n, k, b, ldb, packed);
}

template <class Operands, class Arch>
void gemm_packed_ab_int(int m, int n, int k, const typename Operands::A* packed_a, const typename Operands::B* packed_b,
                        const IntegerGemmEpilogue& epilogue) {
    PackedGemmInt<Operands, Arch>{}.multiply_packed(m, n, k, packed_a, packed_b, epilogue);
}

// Each op's functions from one arch's instantiation of its generic body.
template <class Arch>
void install_gemm_f32(KernelTable& t) {
    t.gemm_f32 = packed_gemm_f32<Arch>;
    t.gemm_workspace_f32 = gemm_workspace_f32<Arch>;
    t.gemm_pack_a_f32 = gemm_pack_a_f32<Arch>;
    t.gemm_packed_a_f32 = gemm_packed_a_f32<Arch>;
    t.gemm_pack_a_narrow_f32 = gemm_pack_a_narrow_f32<Arch>;
    t.gemm_narrow_f32 = gemm_narrow_f32<Arch>;
    t.gemm_narrow_rows_f32 = PackedGemmF32<Arch>::kNarrowRows;
    t.gemm_conv3x3_pack_a_f32 = gemm_conv3x3_pack_a_f32<Arch>;
    t.gemm_conv3x3_workspace_f32 = gemm_conv3x3_workspace_f32<Arch>;
    t.gemm_conv3x3_f32 = gemm_conv3x3_f32<Arch>;
}
template <class Arch>
void install_max_pool_2x2_f32(KernelTable& t) { t.max_pool_2x2_f32 = max_pool_2x2_f32<Arch>; }
template <class Arch>
void install_max_pool_2x2_u8(KernelTable& t) { t.max_pool_2x2_u8 = max_pool_2x2_u8<Arch>; }
template <class Arch>
void install_quantize_u8(KernelTable& t) { t.quantize_u8 = quantize_u8<Arch>; }
template <class Arch>
void install_winograd_rows_f32(KernelTable& t) {
    t.winograd_input_row_f32 = WinogradRowsF32<Arch>::input;
    t.winograd_output_row_f32 = WinogradRowsF32<Arch>::output;
    t.winograd_gradient_row_f32 = WinogradRowsF32<Arch>::output_gradient;
    t.winograd_f4_input_row_f32 = WinogradRowsF32<Arch>::input_f4;
    t.winograd_f4_output_row_f32 = WinogradRowsF32<Arch>::output_f4;
}
template <class Arch>
void install_fma_peak_f32(KernelTable& t) { t.fma_peak_f32 = fma_peak_f32<Arch>; }
template <class Arch>
void install_gemm_s8(KernelTable& t) {
    t.gemm_pack_a_s8 = gemm_pack_a_int<S8Operands, Arch>;
    t.gemm_workspace_s8 = gemm_workspace_int<S8Operands, Arch>;
    t.gemm_packed_a_s8 = gemm_packed_a_int<S8Operands, Arch>;
    t.gemm_conv3x3_pack_a_s8 = gemm_conv3x3_pack_a_s8<Arch>;
    t.gemm_conv3x3_workspace_s8 = gemm_conv3x3_workspace_s8<Arch>;
    t.gemm_conv3x3_s8 = gemm_conv3x3_s8<Arch>;
}
template <class Arch>
void install_gemm_s16(KernelTable& t) {
    t.gemm_pack_a_s16 = gemm_pack_a_int<S16Operands, Arch>;
    t.gemm_workspace_s16 = gemm_workspace_int<S16Operands, Arch>;
    t.gemm_packed_a_s16 = gemm_packed_a_int<S16Operands, Arch>;
    t.gemm_pack_b_s16 = gemm_pack_b_int<S16Operands, Arch>;
    t.gemm_packed_ab_s16 = gemm_packed_ab_int<S16Operands, Arch>;
}

void install_gemm_f32_reference(KernelTable& t) {
    t.gemm_f32 = gemm_f32_reference;
    t.gemm_workspace_f32 = gemm_workspace_f32_reference;
    t.gemm_pack_a_f32 = gemm_pack_a_f32_reference;
    t.gemm_packed_a_f32 = gemm_packed_a_f32_reference;
    t.gemm_pack_a_narrow_f32 = gemm_pack_a_narrow_f32_reference;
    t.gemm_narrow_f32 = gemm_narrow_f32_reference;
    t.gemm_narrow_rows_f32 = 1;
    t.gemm_conv3x3_pack_a_f32 = gemm_conv3x3_pack_a_f32_reference;
    t.gemm_conv3x3_workspace_f32 = gemm_conv3x3_workspace_f32_reference;
    t.gemm_conv3x3_f32 = gemm_conv3x3_f32_reference;
}
void install_max_pool_2x2_f32_reference(KernelTable& t) { t.max_pool_2x2_f32 = max_pool_2x2_f32_reference; }
void install_max_pool_2x2_u8_reference(KernelTable& t) { t.max_pool_2x2_u8 = max_pool_2x2_u8_reference; }
void install_quantize_u8_reference(KernelTable& t) { t.quantize_u8 = quantize_u8_reference; }
void install_winograd_rows_f32_reference(KernelTable& t) {
    t.winograd_input_row_f32 = winograd_input_row_f32_reference;
    t.winograd_output_row_f32 = winograd_output_row_f32_reference;
    t.winograd_gradient_row_f32 = winograd_gradient_row_f32_reference;
    t.winograd_f4_input_row_f32 = winograd_f4_input_row_f32_reference;
    t.winograd_f4_output_row_f32 = winograd_f4_output_row_f32_reference;
}
void install_fma_peak_f32_reference(KernelTable& t) { t.fma_peak_f32 = fma_peak_f32_reference; }
void install_gemm_s8_reference(KernelTable& t) {
    t.gemm_pack_a_s8 = gemm_pack_a_s8_reference;
    t.gemm_workspace_s8 = gemm_workspace_int_reference;
    t.gemm_packed_a_s8 = gemm_packed_a_s8_reference;
    t.gemm_conv3x3_pack_a_s8 = gemm_conv3x3_pack_a_s8_reference;
    t.gemm_conv3x3_workspace_s8 = gemm_conv3x3_workspace_s8_reference;
    t.gemm_conv3x3_s8 = gemm_conv3x3_s8_reference;
}
void install_gemm_s16_reference(KernelTable& t) {
    t.gemm_pack_a_s16 = gemm_pack_a_s16_reference;
    t.gemm_workspace_s16 = gemm_workspace_int_reference;
    t.gemm_packed_a_s16 = gemm_packed_a_s16_reference;
    t.gemm_pack_b_s16 = gemm_pack_b_s16_reference;
    t.gemm_packed_ab_s16 = gemm_packed_ab_s16_reference;
}

// Every float op of the generic SIMD bodies, for one arch.
template <class Arch>
void list_simd_kernels(std::vector<KernelListing<KernelTable>>& list, const char* arch, bool (*cpu_supports)()) {
    list.push_back({"gemm", DataType::F32, arch, cpu_supports, install_gemm_f32<Arch>});
    list.push_back({"max_pool_2x2", DataType::F32, arch, cpu_supports, install_max_pool_2x2_f32<Arch>});
    list.push_back({"max_pool_2x2", DataType::U8, arch, cpu_supports, install_max_pool_2x2_u8<Arch>});
    list.push_back({"quantize", DataType::U8, arch, cpu_supports, install_quantize_u8<Arch>});
    list.push_back({"winograd_rows", DataType::F32, arch, cpu_supports, install_winograd_rows_f32<Arch>});
    list.push_back({"fma_peak", DataType::F32, arch, cpu_supports, install_fma_peak_f32<Arch>});
}
// Both integer GEMMs of one arch's tiles.
template <class Arch>
void list_int_kernels(std::vector<KernelListing<KernelTable>>& list, const char* arch, bool (*cpu_supports)()) {
    list.push_back({"gemm", DataType::S8, arch, cpu_supports, install_gemm_s8<Arch>});
    list.push_back({"gemm", DataType::S16, arch, cpu_supports, install_gemm_s16<Arch>});
}


// The kernel list, best first within each op: the faster arches, then the scalar reference every CPU runs.
std::vector<KernelListing<KernelTable>> build_kernel_list() {
    std::vector<KernelListing<KernelTable>> list;
#if defined(__x86_64__)
    list.push_back({"gemm", DataType::S8, "amx_int8", cpu_has_amx_int8, install_gemm_s8<AmxInt8>});
    list_int_kernels<Avx512Vnni>(list, "avx512_vnni", cpu_has_avx512_vnni);
    list_simd_kernels<xsimd::avx512bw>(list, "avx512", cpu_has_avx512);
    list_simd_kernels<xsimd::fma3<xsimd::avx2>>(list, "avx2", cpu_has_avx2_fma);
    list_int_kernels<xsimd::fma3<xsimd::avx2>>(list, "avx2", cpu_has_avx2_fma);
    list_simd_kernels<xsimd::sse2>(list, "sse2", any_cpu);
    list_int_kernels<xsimd::sse2>(list, "sse2", any_cpu);
#elif defined(__aarch64__)
    list.push_back({"gemm", DataType::S8, "neon64_dotprod", cpu_has_dotprod, install_gemm_s8<Neon64Dotprod>});
    list_simd_kernels<xsimd::neon64>(list, "neon64", any_cpu);
    list_int_kernels<xsimd::neon64>(list, "neon64", any_cpu);
#endif
    list.push_back({"gemm", DataType::F32, "scalar", any_cpu, install_gemm_f32_reference});
    list.push_back({"max_pool_2x2", DataType::F32, "scalar", any_cpu, install_max_pool_2x2_f32_reference});
    list.push_back({"max_pool_2x2", DataType::U8, "scalar", any_cpu, install_max_pool_2x2_u8_reference});
    list.push_back({"quantize", DataType::U8, "scalar", any_cpu, install_quantize_u8_reference});
    list.push_back({"winograd_rows", DataType::F32, "scalar", any_cpu, install_winograd_rows_f32_reference});
    list.push_back({"fma_peak", DataType::F32, "scalar", any_cpu, install_fma_peak_f32_reference});
    list.push_back({"gemm", DataType::S8, "scalar", any_cpu, install_gemm_s8_reference});
    list.push_back({"gemm", DataType::S16, "scalar", any_cpu, install_gemm_s16_reference});
    return list;
}

KernelTable assemble(const std::string& arch) { return assemble_kernel_table(kernel_list(), arch); }

const KernelTable& best_table() {
    static const KernelTable table = assemble("");
    return table;
}

const KernelTable* find_table(const std::string& name) {
    if (name == best_table().name) return &best_table();  // the default, also when it is "mixed"
    for (const KernelTable* table : available_kernel_tables())
        if (name == table->name) return table;
    return nullptr;
}

const KernelTable* initial_table() {
    const char* forced = std::getenv("EDGEQC_ARCH");
    if (forced && *forced) {
        if (const KernelTable* table = find_table(forced)) return table;
        throw Error(std::string("EDGEQC_ARCH='") + forced + "' names no kernel set this build can run here");
    }
    return &best_table();
}

const KernelTable*& active_table() {
    static const KernelTable* table = initial_table();
    return table;
}
}  // namespace

bool any_cpu() { return true; }
bool cpu_has_avx2_fma() { return xsimd::available_architectures().fma3_avx2; }
bool cpu_has_avx512() {
#if defined(__x86_64__)
    // xsimd's check covers the OS saving the 512-bit registers; it has no VL bit, which CPUID gives (the kernels are
    // built with -mavx512vl, so the compiler may use it on 256-bit vectors).
    return xsimd::available_architectures().avx512bw && xsimd::available_architectures().avx512dq &&
           xsimd::available_architectures().avx512cd && __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}
bool cpu_has_avx512_vnni() {
#if defined(__x86_64__)
    // xsimd's check covers the OS saving the 512-bit registers; it has no VNNI bit, which CPUID gives.
    return xsimd::available_architectures().avx512bw && __builtin_cpu_supports("avx512vnni");
#else
    return false;
#endif
}
bool cpu_has_avx512_bf16() {
#if defined(__x86_64__)
    return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}
#if defined(__x86_64__)
namespace {
// Whether CPUID leaf 7 lists the AMX tiles (EDX bit 24) and `feature` (AMX-INT8 bit 25, AMX-BF16 bit 22), and Linux
// grants the process the 8 KiB of tile state, which it withholds until asked (arch_prctl ARCH_REQ_XCOMP_PERM for
// XTILEDATA, state component 18; refused where the kernel does not support it). The kernels also need AVX-512 BW
// (their packing and epilogues) and VBMI (the int8 packing), which every AMX CPU has.
bool cpu_has_amx(unsigned feature_bit) {
    // The AMX feature bits of CPUID leaf 7, or none where the tiles cannot be used.
    static const unsigned usable_features = [] {
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        if (!cpu_has_avx512() || !__builtin_cpu_supports("avx512vbmi")) return 0u;
        if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !(edx & (1u << 24))) return 0u;
        constexpr long kRequestPermission = 0x1023, kTileData = 18;
        return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0 ? edx : 0u;
    }();
    return (usable_features & (1u << feature_bit)) != 0;
}
}  // namespace
#endif

bool cpu_has_amx_int8() {
#if defined(__x86_64__)
    return cpu_has_amx(25);
#else
    return false;
#endif
}
bool cpu_has_amx_bf16() {
#if defined(__x86_64__)
    return cpu_has_amx(22) && cpu_has_avx512_bf16();
#else
    return false;
#endif
}
bool cpu_has_dotprod() {
#if defined(__aarch64__) && defined(HWCAP_ASIMDDP)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return false;
#endif
}

const std::vector<KernelListing<KernelTable>>& kernel_list() {
    static const std::vector<KernelListing<KernelTable>> list = build_kernel_list();
    return list;
}

const KernelTable& reference_kernels() {
    static const KernelTable table = assemble("scalar");
    return table;
}

const std::vector<const KernelTable*>& available_kernel_tables() {
    static const std::vector<KernelTable> tables = arch_tables(kernel_list());
    static const std::vector<const KernelTable*> pointers = pointers_to(tables);
    return pointers;
}

const KernelTable& kernels() { return *active_table(); }

void select_kernels(const std::string& arch) {
    const KernelTable* table = find_table(arch);
    if (!table) throw Error("no kernel set named '" + arch + "' in this build for this CPU");
    active_table() = table;
}

}  // namespace edgeqc
