// AVX-512 VNNI tiles of the integer GEMMs: vpdpbusd multiplies the 7-bit activations (unsigned) by the s8 weights
// and adds each group of four into an int32 lane in one instruction (vpdpwssd does the same for int16 pairs), so a
// 512-bit register holds 16 columns' sums and nothing saturates. Built with the AVX-512 F/BW/VL/VNNI flags, listed
// only where the CPU reports AVX-512 BW and VNNI.
#include <immintrin.h>

#include "engine/kernels/gemm_int.hpp"
#include "engine/kernels/gemm_int_avx512_epilogue.hpp"
#include "engine/kernels/gemm_int_avx512_vbmi_pack.hpp"

namespace edgeqc {

namespace {

__m512i broadcast_group(const void* group) {
    return _mm512_set1_epi32(int_gemm_detail::group_bits(group));
}

// 12 rows x 32 columns: 24 accumulators, 2 B vectors and a broadcast weight group of the 32 registers. Dot is
// vpdpbusd or vpdpwssd. A panel's last 16 columns or fewer take the left half of the tile alone (sums_half): the
// 35 columns of a 5x7 image cost 48 then, not 64.
template <class A, class B, __m512i (*Dot)(__m512i, __m512i, __m512i)>
struct VnniTile : Avx512QuantizedEpilogue<32> {
    static constexpr int kRows = 12, kColumns = 32;

    static void sums(int groups, const A* a, const B* b, std::int32_t* out) { vector_sums<2>(groups, a, b, out); }
    static void sums_half(int groups, const A* a, const B* b, std::int32_t* out) {
        vector_sums<1>(groups, a, b, out);
    }

protected:
    static constexpr int kGroup = 4 / static_cast<int>(sizeof(A));

    // One group's products: the first kVectors x 16 columns' accumulators plus those columns times the kRows rows'
    // weights at a.
    template <int kVectors>
    static void accumulate(__m512i (&acc)[kRows][kVectors], const __m512i (&columns)[kVectors], const A* a) {
#pragma GCC unroll 12
        for (int i = 0; i < kRows; ++i) {
            const __m512i weights = broadcast_group(a + i * kGroup);
            for (int v = 0; v < kVectors; ++v) acc[i][v] = Dot(acc[i][v], columns[v], weights);
        }
    }
    template <int kVectors>
    static void store(const __m512i (&acc)[kRows][kVectors], std::int32_t* out) {
        for (int i = 0; i < kRows; ++i)
            for (int v = 0; v < kVectors; ++v) _mm512_storeu_si512(out + i * kColumns + v * 16, acc[i][v]);
    }

private:
    // The sums of the tile's first kVectors x 16 columns.
    template <int kVectors>
    static void vector_sums(int groups, const A* a, const B* b, std::int32_t* out) {
        __m512i acc[kRows][kVectors] = {};
        for (int g = 0; g < groups; ++g, a += kRows * kGroup, b += kColumns * kGroup) {
            __m512i columns[kVectors];
            for (int v = 0; v < kVectors; ++v) columns[v] = _mm512_loadu_si512(b + v * 16 * kGroup);
            accumulate<kVectors>(acc, columns, a);
        }
        store<kVectors>(acc, out);
    }
};

__m512i dot_u8_s8(__m512i acc, __m512i activations, __m512i weights) {
    return _mm512_dpbusd_epi32(acc, activations, weights);
}
__m512i dot_s16(__m512i acc, __m512i values, __m512i weights) { return _mm512_dpwssd_epi32(acc, values, weights); }

}  // namespace

template <>
struct IntTile<S8Operands, Avx512Vnni> : VnniTile<std::int8_t, std::uint8_t, dot_u8_s8> {
    // A 3x3 convolution's B read where it lies, from its input four channels innermost (gemm_int.hpp): a group is
    // one tap's four channels at 16 positions, 64 consecutive bytes. Packing B took the layer 3-57 % longer than
    // its products on a Zen 5 (as long as the products on conv2 and conv5 when the memory was busy).
    template <int kVectors>
    static void sums_from_planes(int channel_groups, const std::int8_t* a, const std::uint8_t* const* vectors,
                                 std::ptrdiff_t group_stride, const std::ptrdiff_t* taps, std::int32_t* out) {
        __m512i acc[kRows][kVectors] = {};
        const std::uint8_t* at[kVectors];
        for (int v = 0; v < kVectors; ++v) at[v] = vectors[v];
        for (int c = 0; c < channel_groups; ++c) {
            for (int t = 0; t < 9; ++t, a += kRows * kGroup) {
                __m512i columns[kVectors];
                for (int v = 0; v < kVectors; ++v) columns[v] = _mm512_loadu_si512(at[v] + taps[t]);
                accumulate<kVectors>(acc, columns, a);
            }
            // The group after next, its three rows of up to 72 bytes (16 positions and the two right taps'): the
            // groups lie a plane apart, which the hardware prefetchers did not follow (conv4: 0.426 -> 0.399 ms).
            for (int v = 0; v < kVectors; ++v) {
                at[v] += group_stride;
                for (int ky = 0; ky < 3; ++ky) {
                    _mm_prefetch(reinterpret_cast<const char*>(at[v] + group_stride + taps[3 * ky]), _MM_HINT_T0);
                    _mm_prefetch(reinterpret_cast<const char*>(at[v] + group_stride + taps[3 * ky] + 71), _MM_HINT_T0);
                }
            }
        }
        store<kVectors>(acc, out);
    }
    // The product transposed (Conv3x3Order::ByPositions): kPositions positions, each group's four bytes broadcast,
    // against the next kChannels x 4 bytes of A, one or two vectors of output channels. Every product lands in a
    // lane that is stored, as positions need not be consecutive: conv4 of the reference network (10 x 15, pooled)
    // ran 8 % faster than in vectors of positions on a Zen 5, conv5 (5 x 7) 18 %; conv2 (40 x 60) 18 % slower.
    static constexpr int kPositions = 12, kChannels = 32;
    template <int kVectors>
    static void position_sums(int channel_groups, const std::uint8_t* const* positions, std::ptrdiff_t group_stride,
                              const std::ptrdiff_t* taps, const std::int8_t* a, std::int32_t* out) {
        __m512i acc[kPositions][kVectors] = {};
        for (int c = 0; c < channel_groups; ++c) {
            for (int t = 0; t < 9; ++t, a += kChannels * 4) {
                __m512i weights[kVectors];
                for (int v = 0; v < kVectors; ++v) weights[v] = _mm512_loadu_si512(a + v * 64);
                const std::ptrdiff_t offset = c * group_stride + taps[t];
#pragma GCC unroll 12
                for (int i = 0; i < kPositions; ++i) {
                    const __m512i activations = broadcast_group(positions[i] + offset);
                    for (int v = 0; v < kVectors; ++v) acc[i][v] = dot_u8_s8(acc[i][v], activations, weights[v]);
                }
            }
        }
        for (int i = 0; i < kPositions; ++i)
            for (int v = 0; v < kVectors; ++v) _mm512_storeu_si512(out + i * kChannels + v * 16, acc[i][v]);
    }
    // finish_sums into 7-bit activations for position_sums' tile: its first `outputs` positions (row-major sums,
    // kChannels a position), or with `pooled` the maxima of each four of them (the pool of their sums, taken here in
    // vectors: a loop over the lanes before made conv3 about 1 % slower on a Zen 5), are C's columns column,
    // column + 1, ...; its first `channels` lanes C's rows row, row + 1, .... Requantize16 takes 16 channels at a
    // time, each lane its channel's bias and scale; a channel's outputs are then a run in C, written from a small
    // transpose: for up to 4 outputs (a pooled tile's 3), unpacks that make a word of each channel's outputs and a
    // masked store of it (96 byte moves a tile were a twentieth of conv3's time), else byte by byte.
    static void finish_transposed(const std::int32_t* sums, bool pooled, int outputs, int channels, int row,
                                  int column, const IntegerGemmEpilogue& e) {
        const int positions_per_output = pooled ? 4 : 1;
        const auto output_sums = [&](int w, int v) {
            const std::int32_t* at = sums + positions_per_output * w * kChannels + 16 * v;
            if (!pooled) return _mm512_loadu_si512(at);
            return _mm512_max_epi32(_mm512_max_epi32(_mm512_loadu_si512(at), _mm512_loadu_si512(at + kChannels)),
                                    _mm512_max_epi32(_mm512_loadu_si512(at + 2 * kChannels),
                                                     _mm512_loadu_si512(at + 3 * kChannels)));
        };
        const Requantize16 requantize(e);
        for (int v = 0; 16 * v < channels; ++v) {
            const int lanes_here = std::min(16, channels - 16 * v);
            const auto lanes = static_cast<__mmask16>(lanes_here == 16 ? 0xFFFF : (1u << lanes_here) - 1);
            const __m512i bias = e.row_bias ? _mm512_maskz_loadu_epi32(lanes, e.row_bias + row + 16 * v)
                                            : _mm512_setzero_si512();
            const __m512 scale = _mm512_maskz_loadu_ps(lanes, e.row_scale + row + 16 * v);
            alignas(16) std::uint8_t bytes[kPositions][16];
            for (int w = 0; w < outputs; ++w)
                _mm_store_si128(reinterpret_cast<__m128i*>(bytes[w]),
                                requantize(output_sums(w, v), bias, scale));
            if (outputs <= 4) {
                __m128i b[4];
                for (int w = 0; w < 4; ++w)
                    b[w] = w < outputs ? _mm_load_si128(reinterpret_cast<const __m128i*>(bytes[w]))
                                       : _mm_setzero_si128();
                // Word j % 4 of words[j / 4]: channel j's outputs 0 to 3, byte by byte.
                const __m128i low = _mm_unpacklo_epi8(b[0], b[1]), high = _mm_unpackhi_epi8(b[0], b[1]);
                const __m128i low23 = _mm_unpacklo_epi8(b[2], b[3]), high23 = _mm_unpackhi_epi8(b[2], b[3]);
                const __m128i words[4] = {_mm_unpacklo_epi16(low, low23), _mm_unpackhi_epi16(low, low23),
                                          _mm_unpacklo_epi16(high, high23), _mm_unpackhi_epi16(high, high23)};
                for (int j = 0; j < lanes_here; ++j) {
                    // The vector stored where word j % 4 falls on the channel's outputs, only its bytes unmasked
                    // (masked bytes are never touched, inside C or not).
                    const auto at = reinterpret_cast<std::uintptr_t>(
                        e.quantized + static_cast<std::ptrdiff_t>(row + 16 * v + j) * e.ldc + column);
                    _mm_mask_storeu_epi8(reinterpret_cast<void*>(at - 4 * (j % 4)),
                                         static_cast<__mmask16>(((1u << outputs) - 1) << 4 * (j % 4)), words[j / 4]);
                }
                continue;
            }
            for (int j = 0; j < lanes_here; ++j) {
                std::uint8_t* out = e.quantized + static_cast<std::ptrdiff_t>(row + 16 * v + j) * e.ldc + column;
                for (int w = 0; w < outputs; ++w) out[w] = bytes[w][j];
            }
        }
    }
    // InterleavedPlanes::interleave_words 16 positions at a time, the last ones masked.
    static void interleave_words(const std::uint8_t* c0, const std::uint8_t* c1, const std::uint8_t* c2,
                                 const std::uint8_t* c3, int count, std::uint32_t* words) {
        for (int j = 0; j < count; j += 16) {
            const auto lanes = static_cast<__mmask16>(count - j >= 16 ? 0xFFFF : (1u << (count - j)) - 1);
            const auto channel = [&](const std::uint8_t* c, int shift) {
                return _mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lanes, c + j)), shift);
            };
            const __m512i word = _mm512_or_si512(_mm512_or_si512(channel(c0, 0), channel(c1, 8)),
                                                 _mm512_or_si512(channel(c2, 16), channel(c3, 24)));
            _mm512_mask_storeu_epi32(words + j, lanes, word);
        }
    }
    // A 3x3 convolution of one input channel (a first layer on grey images) with B made in registers: a group is one
    // tap row's three inputs and the input after them (its weight zero) at 16 positions of a row, which a vpermd and
    // a vpshufb gather from one load of the padded plane. A unit is two output rows by 16 positions (a pooled unit
    // their 8 outputs, the even positions in lanes 0-7 and the odd ones in 8-15) for every panel of
    // kOneChannelRows output channels, finished in registers. Packed as B (depth 9 padded to 16, 12 output channels
    // a tile and 36 for 32) and finished through memory, conv1 of the reference network spent a fifth of its time
    // on its products on a Zen 5. Orphaned: each thread of the team takes an equal share of the units (no barrier at
    // the end).
    static constexpr int kOneChannelRows = 8;
    static void conv3x3_one_channel(int m, const std::uint8_t* planes, std::ptrdiff_t stride, int height, int width,
                                    const std::int8_t* packed_a, bool max_pool_2x2, const IntegerGemmEpilogue& e) {
        const int out_height = max_pool_2x2 ? height / 2 : height, out_width = max_pool_2x2 ? width / 2 : width;
        const int unit_outputs = max_pool_2x2 ? 8 : 16, blocks = (out_width + unit_outputs - 1) / unit_outputs;
        const int pairs = max_pool_2x2 ? out_height : (height + 1) / 2;
        const int panels = (m + kOneChannelRows - 1) / kOneChannelRows;
        // 128-bit lane k takes four dwords of the load and shuffles its 16 bytes into the groups of its four
        // positions: unpooled 4k to 4k + 3, pooled the even (lanes 0 and 1) or odd (2 and 3) ones of positions 0-7
        // (k % 2 = 0) or 8-15.
        const __m512i dwords = max_pool_2x2 ? _mm512_setr_epi32(0, 1, 2, 3, 2, 3, 4, 5, 0, 1, 2, 3, 2, 3, 4, 5)
                                            : _mm512_setr_epi32(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6);
        const __m512i consecutive =
            _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 1, 2, 3, 4, 2, 3, 4, 5, 3, 4, 5, 6));
        const __m512i even = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9));
        const __m512i bytes =
            max_pool_2x2 ? _mm512_mask_add_epi8(even, 0xFFFFFFFF00000000ull, even, _mm512_set1_epi8(1)) : consecutive;
        const Requantize16 requantize(e);
        // 16 sums of channel `row` that are C's columns column to column + count - 1.
        const auto finish = [&](__m512i sums, int count, int row, int column) {
            if (!e.quantized) {
                alignas(64) std::int32_t lanes[16];
                _mm512_store_si512(lanes, sums);
                return int_gemm_detail::finish_sums(lanes, count, row, column, e);
            }
            const __m128i out = requantize(sums, _mm512_set1_epi32(e.row_bias ? e.row_bias[row] : 0),
                                           _mm512_set1_ps(e.row_scale[row]));
            _mm_mask_storeu_epi8(e.quantized + static_cast<std::ptrdiff_t>(row) * e.ldc + column,
                                 static_cast<__mmask16>((1u << count) - 1), out);
        };
        const long units = static_cast<long>(pairs) * blocks;
        const long threads = omp_get_num_threads(), thread = omp_get_thread_num();
        for (long unit = units * thread / threads; unit < units * (thread + 1) / threads; ++unit) {
            const int pair = static_cast<int>(unit / blocks), first = static_cast<int>(unit % blocks) * unit_outputs;
            const int y = 2 * pair, x = max_pool_2x2 ? 2 * first : first;
            // The groups of padded rows y to y + 3 (output row y reads rows y to y + 2); an unpooled last row alone
            // repeats row y + 2 for y + 3, past the planes.
            __m512i groups[4];
            const int padded_rows = max_pool_2x2 || y + 1 < height ? 4 : 3;
            for (int r = 0; r < 4; ++r) {
                const __m256i inputs = _mm256_loadu_si256(
                    reinterpret_cast<const __m256i*>(planes + (y + std::min(r, padded_rows - 1)) * stride + x));
                groups[r] = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(dwords, _mm512_zextsi256_si512(inputs)),
                                                bytes);
            }
            const int count = std::min(unit_outputs, out_width - first);
            for (int panel = 0; panel < panels; ++panel) {
                const std::int8_t* a = packed_a + panel * 3 * kOneChannelRows * kGroup;
                __m512i acc[kOneChannelRows][2] = {};
                for (int ky = 0; ky < 3; ++ky)
#pragma GCC unroll 8
                    for (int i = 0; i < kOneChannelRows; ++i) {
                        const __m512i weights = broadcast_group(a + (ky * kOneChannelRows + i) * kGroup);
                        acc[i][0] = dot_u8_s8(acc[i][0], groups[ky], weights);
                        acc[i][1] = dot_u8_s8(acc[i][1], groups[ky + 1], weights);
                    }
                const int channels = std::min(kOneChannelRows, m - panel * kOneChannelRows);
                for (int i = 0; i < channels; ++i) {
                    const int row = panel * kOneChannelRows + i;
                    if (max_pool_2x2) {
                        const __m512i rows_max = _mm512_max_epi32(acc[i][0], acc[i][1]);
                        finish(_mm512_max_epi32(rows_max, _mm512_shuffle_i32x4(rows_max, rows_max, 0x4E)), count, row,
                               pair * out_width + first);
                        continue;
                    }
                    finish(acc[i][0], count, row, y * width + x);
                    if (y + 1 < height) finish(acc[i][1], count, row, (y + 1) * width + x);
                }
            }
        }
    }
    // Where the convolution packs its B after all (a first layer of two channels): in vpermb shuffles where
    // the CPU has VBMI (Ice Lake and later, Zen 4 and later), else run by run (the int8 network at batch 1 ran 14-26 %
    // faster with the shuffles on a Xeon with AMX left out).
    static bool pack_conv3x3_panel(const std::uint8_t* planes, const std::ptrdiff_t* offsets, const int* base,
                                   int depth, std::uint8_t* out) {
        static_assert(kColumns == 32, "the VBMI packer writes panels of 32 columns");
        static const bool has_vbmi = __builtin_cpu_supports("avx512vbmi");
        return has_vbmi && pack_conv3x3_panel_vbmi(planes, offsets, base, depth, out);
    }
};
template <>
struct IntTile<S16Operands, Avx512Vnni> : VnniTile<std::int16_t, std::int16_t, dot_s16> {};

template struct PackedGemmInt<S8Operands, Avx512Vnni>;
template struct PackedGemmInt<S16Operands, Avx512Vnni>;

}  // namespace edgeqc
