/*
 * util/connect_error.h - the body of a Connect protocol error.
 */
#ifndef PW_UTIL_CONNECT_ERROR_H
#define PW_UTIL_CONNECT_ERROR_H

/*
 * The compact JSON {"code":code,"message":message} that a Connect server
 * answers an error with (Content-Type: application/json). A NULL message
 * is written as "". Returns a malloc'd string the caller frees, or NULL
 * when out of memory or when code or message is not valid UTF-8.
 */
char *pwx_connect_error_body(const char *code, const char *message);

#endif /* PW_UTIL_CONNECT_ERROR_H */
