// The one list of formats the unpacker knows (YARA's module_list, Zeek's analyzer list): to add a
// format, add its folder under formats/ and one line here. Order is priority: when two formats
// claim the same offset, the earlier one wins, so specific containers come before the
// general-purpose codecs they may contain.
#include <memory>

#include "iotmark/unpack/format.hpp"

#define IOTMARK_BUILTIN_FORMATS(X) \
  X(Uimage)                        \
  X(Trx)                           \
  X(Tplink)                        \
  X(NetgearChk)                    \
  X(Seama)                         \
  X(Shrs)                          \
  X(DlinkEncrypted)                \
  X(DlinkMh01)                     \
  X(BroadcomTag)                   \
  X(BroadcomSao)                   \
  X(Arcadyan)                      \
  X(Fit)                           \
  X(Squashfs)                      \
  X(SquashfsLegacy)                \
  X(Jffs2)                         \
  X(Cramfs)                        \
  X(Romfs)                         \
  X(AndroidSparse)                 \
  X(Ubi)                           \
  X(Ubifs)                         \
  X(Ext)                           \
  X(Yaffs2)                        \
  X(Iso9660)                       \
  X(Cpio)                          \
  X(Tar)                           \
  X(Zip)                           \
  X(SevenZip)                      \
  X(Ar)                            \
  X(Ihex)                          \
  X(Srec)                          \
  X(Gzip)                          \
  X(Xz)                            \
  X(Bzip2)                         \
  X(Zstd)                          \
  X(Lz4)                           \
  X(Lzma)                          \
  X(Zlib)                          \
  X(LinuxKernel)

namespace iotmark::unpack {

namespace formats {
#define IOTMARK_DECLARE_FORMAT(Name) std::unique_ptr<const Format> Make##Name##Format();
IOTMARK_BUILTIN_FORMATS(IOTMARK_DECLARE_FORMAT)
#undef IOTMARK_DECLARE_FORMAT
}  // namespace formats

const FormatList& BuiltinFormats() {
  static const FormatList list = [] {
    FormatList formats;
#define IOTMARK_ADD_FORMAT(Name) formats.push_back(formats::Make##Name##Format());
    IOTMARK_BUILTIN_FORMATS(IOTMARK_ADD_FORMAT)
#undef IOTMARK_ADD_FORMAT
    return formats;
  }();
  return list;
}

}  // namespace iotmark::unpack
