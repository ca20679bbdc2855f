#ifndef CDE_CMPI_SHIM_H
#define CDE_CMPI_SHIM_H
#include <mpi.h>
// Open MPI's handles are macros over global symbols; Swift cannot import them,
// so each is turned into a function.
static inline MPI_Comm cde_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm cde_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype cde_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cde_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype cde_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype cde_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype cde_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype cde_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op cde_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op cde_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op cde_mpi_min(void) { return MPI_MIN; }
static inline MPI_Request cde_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *cde_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline void *cde_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int cde_mpi_success(void) { return MPI_SUCCESS; }
static inline int cde_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int cde_mpi_status_source(const MPI_Status *s) { return s->MPI_SOURCE; }
static inline int cde_mpi_thread_single(void) { return MPI_THREAD_SINGLE; }
static inline int cde_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int cde_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int cde_mpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
#endif
