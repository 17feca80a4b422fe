/*
 * Exported wrappers around DPDK's static inline functions and per-lcore variables, so that
 * Rust can call them. Every function here is a one-line forward to the DPDK function of the
 * same name without the vbng_ prefix.
 */
#ifndef VBNG_SHIM_H
#define VBNG_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

/* rte_eth_rx_burst / rte_eth_tx_burst. */
uint16_t vbng_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
                           uint16_t nb_pkts);
uint16_t vbng_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
                           uint16_t nb_pkts);

/* Buffer allocation and release. */
struct rte_mbuf *vbng_pktmbuf_alloc(struct rte_mempool *mp);
int vbng_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void vbng_pktmbuf_free(struct rte_mbuf *m);

/* Data access: rte_pktmbuf_mtod, rte_pktmbuf_append and the length fields. */
void *vbng_pktmbuf_mtod(struct rte_mbuf *m);
char *vbng_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
uint16_t vbng_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t vbng_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t vbng_pktmbuf_nb_segs(const struct rte_mbuf *m);
struct rte_mbuf *vbng_pktmbuf_next(const struct rte_mbuf *m);
uint16_t vbng_pktmbuf_tailroom(const struct rte_mbuf *m);
/* One call per segment for copy loops: the segment's data pointer, its length in *len and
 * the next segment (NULL for the last) in *next. */
const uint8_t *vbng_pktmbuf_segment(const struct rte_mbuf *m, uint16_t *len,
                                    struct rte_mbuf **next);
/* Allocates a buffer from mp and copies len bytes of data into it (one segment); NULL if the
 * pool is empty or len exceeds the buffer's room. */
struct rte_mbuf *vbng_pktmbuf_alloc_copy(struct rte_mempool *mp, const uint8_t *data,
                                         uint16_t len);

/* Per-lcore state and the time stamp counter. */
int vbng_errno(void);
unsigned int vbng_lcore_id(void);
uint64_t vbng_rdtsc(void);

#endif
