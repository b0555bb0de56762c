/* Checks that an installed rask is usable: the header and the library agree
 * on the ABI version, and the library reports a version string.
 * Built by tests/cmake-consumer/CMakeLists.txt and by scripts/check-install.sh
 * (through pkg-config). Prints "consumer ok" on success and exits 0. */
#include <rask.h>

#include <stdio.h>
#include <string.h>

#ifndef RASK_ABI_VERSION
#error "rask.h does not define RASK_ABI_VERSION"
#endif

int main(void) {
    unsigned long long header_abi = (unsigned long long)RASK_ABI_VERSION;
    unsigned long long library_abi = (unsigned long long)rask_abi_version();
    const char *version = rask_version_string();

    printf("rask version %s, abi %llu (header abi %llu)\n", version ? version : "(null)",
           library_abi, header_abi);
    if (library_abi != header_abi) {
        fprintf(stderr, "consumer: ABI mismatch: rask.h says %llu, librask says %llu\n",
                header_abi, library_abi);
        return 1;
    }
    if (version == NULL || version[0] == '\0') {
        fprintf(stderr, "consumer: rask_version_string() returned an empty string\n");
        return 1;
    }
#ifdef EXPECTED_VERSION
    if (strstr(version, EXPECTED_VERSION) == NULL) {
        fprintf(stderr, "consumer: version string '%s' does not contain '%s'\n", version,
                EXPECTED_VERSION);
        return 1;
    }
#endif
    printf("consumer ok\n");
    return 0;
}
