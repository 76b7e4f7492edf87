package server

import (
	"context"

	"github.com/tern-broker/tern/internal/cluster"
	"github.com/tern-broker/tern/internal/mgmt"
)

// grow serves POST /api/cluster/grow (cluster.Node.Grow).
func (s *Server) grow(ctx context.Context, r mgmt.GrowRequest) (any, error) {
	res, err := s.node.Grow(ctx, growRequest(r))
	return res, clientError(err)
}

// shrink serves POST /api/cluster/shrink (cluster.Node.Shrink).
func (s *Server) shrink(ctx context.Context, r mgmt.GrowRequest) (any, error) {
	res, err := s.node.Shrink(ctx, growRequest(r))
	return res, clientError(err)
}

func growRequest(r mgmt.GrowRequest) cluster.GrowRequest {
	return cluster.GrowRequest{Node: r.Node, VHostPattern: r.VHostPattern, QueuePattern: r.QueuePattern, Even: r.Strategy == "even"}
}
