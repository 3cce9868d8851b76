#ifndef CODISTILL_CMPI_SHIM_H
#define CODISTILL_CMPI_SHIM_H
#include <mpi.h>

// Open MPI defines its predefined handles as addresses of global objects behind
// macros Swift cannot import; these getters hand them over as plain values.
static inline MPI_Comm cd_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm cd_mpi_comm_self(void) { return MPI_COMM_SELF; }
static inline MPI_Comm cd_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype cd_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cd_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype cd_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype cd_mpi_char(void) { return MPI_CHAR; }
static inline MPI_Datatype cd_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype cd_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype cd_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Op cd_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op cd_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op cd_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op cd_mpi_bor(void) { return MPI_BOR; }
static inline MPI_Info cd_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline MPI_Win cd_mpi_win_null(void) { return MPI_WIN_NULL; }
static inline MPI_Request cd_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Errhandler cd_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Errhandler cd_mpi_errors_are_fatal(void) { return MPI_ERRORS_ARE_FATAL; }
static inline MPI_Status *cd_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline void *cd_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int cd_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int cd_mpi_lock_exclusive(void) { return MPI_LOCK_EXCLUSIVE; }
static inline int cd_mpi_lock_shared(void) { return MPI_LOCK_SHARED; }
static inline int cd_mpi_mode_nocheck(void) { return MPI_MODE_NOCHECK; }
static inline int cd_mpi_undefined(void) { return MPI_UNDEFINED; }
static inline int cd_mpi_success(void) { return MPI_SUCCESS; }
static inline int cd_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int cd_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int cd_mpi_any_tag(void) { return MPI_ANY_TAG; }
#endif
