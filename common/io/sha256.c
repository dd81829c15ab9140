/*
 * sha256.c - the hex SHA-256 of a buffer (tf/lake.h), for the lake's
 * objects in a folder or a bucket and for the S3 client's payload hash.
 */
#include "tf/lake.h"

#include <openssl/evp.h>
#include <stdio.h>

void tf_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}
