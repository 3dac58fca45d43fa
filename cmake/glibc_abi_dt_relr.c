/* Linked into `portico` when its relative relocations are packed (DT_RELR, CMakeLists.txt):
 * glibc 2.36 loads such a binary only when it depends on the GLIBC_ABI_DT_RELR version, which
 * GNU ld's -z pack-relative-relocs adds and lld 14's --pack-dyn-relocs=relr does not. A
 * reference to glibc's marker symbol of that version makes the dependency. */
extern char GLIBC_ABI_DT_RELR;
void* const portico_glibc_abi_dt_relr __attribute__((used)) = &GLIBC_ABI_DT_RELR;
